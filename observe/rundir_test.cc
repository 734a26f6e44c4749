// rundir_test: the checks of observe/rundir.cc that need no second user (tests/rundir_test.sh has
// those): directories others can write to are refused unless sticky, links are not followed when
// a file is made, modes ignore the umask, the lock names its holder, and the sweep removes only
// the directories of dead processes and never holds the lock of one being made.
#include "observe/rundir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace {

class RundirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(tmp ? tmp : "/tmp") + "/rundir_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  static mode_t mode_of(const std::string& path) {
    struct stat st;
    EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  static std::string error() { return snabb_error(); }
  std::string dir_;
};

TEST_F(RundirTest, MakesMissingDirectoriesWithTheirModeWhateverTheUmask) {
  const mode_t old = umask(0);
  const int fd = snabb_rundir_open((dir_ + "/a/b").c_str(), 0700, -1, 2);
  umask(old);
  ASSERT_GE(fd, 0) << error();
  close(fd);
  EXPECT_EQ(mode_of(dir_ + "/a/b"), 0700u);
}

TEST_F(RundirTest, RefusesADirectoryOthersCanWriteToUnlessSticky) {
  ASSERT_EQ(mkdir((dir_ + "/open").c_str(), 0700), 0);
  ASSERT_EQ(chmod((dir_ + "/open").c_str(), 0777), 0);
  EXPECT_EQ(snabb_rundir_open((dir_ + "/open/run").c_str(), 0700, -1, 2), -1);
  EXPECT_NE(error().find("/open: others can write to it (mode 0777)"), std::string::npos)
      << error();
  // Sticky, as /tmp: fine as a parent, never as the run directory itself.
  ASSERT_EQ(chmod((dir_ + "/open").c_str(), 01777), 0);
  const int fd = snabb_rundir_open((dir_ + "/open/run").c_str(), 0700, -1, 2);
  EXPECT_GE(fd, 0) << error();
  close(fd);
  EXPECT_EQ(snabb_rundir_open((dir_ + "/open").c_str(), 0700, -1, 2), -1);
}

TEST_F(RundirTest, CreateReplacesAPlantedLinkAndLeavesItsTargetAlone) {
  { std::ofstream(dir_ + "/target") << "precious"; }
  ASSERT_EQ(symlink((dir_ + "/target").c_str(), (dir_ + "/audit.log").c_str()), 0);
  const int dfd = snabb_rundir_open(dir_.c_str(), 0700, -1, 2);
  ASSERT_GE(dfd, 0) << error();
  const int fd = snabb_rundir_create(dfd, "audit.log", 0600, -1);
  ASSERT_GE(fd, 0) << error();
  ASSERT_EQ(write(fd, "new", 3), 3);
  close(fd);
  std::string target;
  std::ifstream(dir_ + "/target") >> target;
  EXPECT_EQ(target, "precious");
  struct stat st;
  ASSERT_EQ(lstat((dir_ + "/audit.log").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(snabb_rundir_create(dfd, "../x", 0600, -1), -1);
  close(dfd);
}

TEST_F(RundirTest, TheLockNamesItsHolder) {
  const int dfd = snabb_rundir_open(dir_.c_str(), 0700, -1, 2);
  ASSERT_GE(dfd, 0) << error();
  ASSERT_EQ(snabb_rundir_lock(dfd, 0600, -1), 0) << error();
  EXPECT_EQ(snabb_rundir_owned_by(dir_.c_str(), getpid()), 1);
  EXPECT_EQ(snabb_rundir_owned_by(dir_.c_str(), getppid()), -1);
  // Another open of the lock (as another process would) is refused, naming us.
  EXPECT_EQ(snabb_rundir_lock(dfd, 0600, -1), getpid());
  snabb_rundir_close();
  EXPECT_EQ(snabb_rundir_owned_by(dir_.c_str(), getpid()), 0);
  close(dfd);
}

// A directory being made (its lock not yet written) is not even tried by a sweep: its maker, about
// to take the lock, would find it held. Another process's sweeps, as a thread here, while the
// maker takes and gives back the lock: each of its tries succeeds.
TEST_F(RundirTest, SweepNeverHoldsTheLockOfADirectoryBeingMade) {
  const int base = snabb_rundir_open(dir_.c_str(), 0711, -1, 1);
  ASSERT_GE(base, 0) << error();
  const int making = snabb_rundir_mkdir(base, ".new-77-0", 0700, -1);
  ASSERT_GE(making, 0) << error();
  const int lock = openat(making, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(lock, 0);
  std::atomic<int> sweeps{0};
  std::thread sweeper([&] {
    while (sweeps < 20000) {
      snabb_rundir_sweep(base);
      ++sweeps;
    }
  });
  int refused = 0;  // (before the fix, some in every run)
  while (sweeps < 20000) {
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
      ++refused;
    } else {
      flock(lock, LOCK_UN);
    }
  }
  sweeper.join();
  EXPECT_EQ(refused, 0);
  close(lock);
  close(making);
  close(base);
}

TEST_F(RundirTest, SweepRemovesOnlyDeadProcessesDirectories) {
  const int base = snabb_rundir_open(dir_.c_str(), 0711, -1, 1);
  ASSERT_GE(base, 0) << error();
  // A child that makes its run directory, and one it was making (locked, not yet renamed), then
  // dies without cleaning up.
  const pid_t child = fork();
  if (child == 0) {
    char name[32];
    const int fd = snabb_rundir_new(base, 0700, 0600, -1, name, sizeof name);
    const int making = snabb_rundir_mkdir(base, ".new-1-0", 0700, -1);
    _exit(fd >= 0 && making >= 0 && snabb_rundir_lock(making, 0600, -1) == 0 ? 0 : 1);
  }
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_EQ(status, 0);
  const std::string dead = dir_ + "/" + std::to_string(child);
  EXPECT_EQ(snabb_rundir_owned_by(dead.c_str(), child), 0);
  // Ours, locked; one without a lock (an older snabb's, or one being made); another name.
  char name[32];
  const int fd = snabb_rundir_new(base, 0700, 0600, -1, name, sizeof name);
  ASSERT_GE(fd, 0) << error();
  const std::string mine = dir_ + "/" + name;
  EXPECT_EQ(name, std::to_string(getpid()));
  EXPECT_EQ(mode_of(mine), 0700u);
  EXPECT_EQ(snabb_rundir_owned_by(mine.c_str(), getpid()), 1);
  ASSERT_EQ(mkdir((dir_ + "/12345").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((dir_ + "/keep").c_str(), 0700), 0);
  EXPECT_EQ(snabb_rundir_sweep(base), 2);
  EXPECT_NE(access(dead.c_str(), F_OK), 0);
  EXPECT_NE(access((dir_ + "/.new-1-0").c_str(), F_OK), 0);
  EXPECT_EQ(access((mine + "/lock").c_str(), F_OK), 0);
  EXPECT_EQ(access((dir_ + "/12345").c_str(), F_OK), 0);
  EXPECT_EQ(access((dir_ + "/keep").c_str(), F_OK), 0);
  // Our PID taken (by a process of another PID namespace): PID-2.
  snabb_rundir_close();
  EXPECT_NE(access(mine.c_str(), F_OK), 0);
  ASSERT_EQ(mkdir(mine.c_str(), 0700), 0);
  const int second = snabb_rundir_new(base, 0700, 0600, -1, name, sizeof name);
  ASSERT_GE(second, 0) << error();
  EXPECT_EQ(name, std::to_string(getpid()) + "-2");
  snabb_rundir_close();
  EXPECT_NE(access((mine + "-2").c_str(), F_OK), 0);
  close(second);
  close(fd);
  close(base);
}

}  // namespace

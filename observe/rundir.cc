// rundir: run directories made and removed safely (see rundir.h). Everything goes through
// descriptors of directories already checked, so a path cannot be swapped under us half-way.
#include "observe/rundir.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/error.h"

namespace {

// A descriptor closed when it goes out of scope (release() keeps it).
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) close(fd_);
      fd_ = o.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

int fail(int code, const std::string& message) {
  snabb::runtime::set_error(message);
  return code;
}

int fail_errno(const std::string& what) { return fail(-2, what + ": " + std::strerror(errno)); }

std::string user_name(uid_t uid) {
  const passwd* pw = getpwuid(uid);
  return (pw ? std::string(pw->pw_name) + " " : "") + "(uid " + std::to_string(uid) + ")";
}

std::string octal(mode_t mode) {
  char s[8];
  std::snprintf(s, sizeof s, "%04o", static_cast<unsigned>(mode & 07777));
  return s;
}

// Why directory st (at path) cannot be trusted, or "" when it can. mine: it must be ours, and
// not even sticky-writable by others.
std::string distrust(const struct stat& st, const std::string& path, bool mine) {
  if (!S_ISDIR(st.st_mode)) return path + ": not a directory";
  const uid_t me = geteuid();
  if (mine ? st.st_uid != me : st.st_uid != me && st.st_uid != 0) {
    return path + ": owned by " + user_name(st.st_uid) + ", not by you" + (mine ? "" : " or root") +
           "; remove it or choose another directory";
  }
  const bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if (others_write && (mine || !(st.st_mode & S_ISVTX))) {
    return path + ": others can write to it (mode " + octal(st.st_mode) +
           "); remove it or make it writable only by its owner (chmod go-w)";
  }
  return "";
}

// Gives a directory or file we made (or own) its mode and group, whatever the umask.
bool set_mode(int fd, const std::string& path, int mode, int gid) {
  if (gid >= 0 && fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0) {
    fail_errno(path + ": cannot give it group " + std::to_string(gid));
    return false;
  }
  if (fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    fail_errno(path + ": chmod");
    return false;
  }
  return true;
}

std::deque<std::string> components(const std::string& path) {
  std::deque<std::string> parts;
  std::stringstream s(path);
  for (std::string part; std::getline(s, part, '/');) {
    if (!part.empty() && part != ".") parts.push_back(part);
  }
  return parts;
}

// How deep a run directory's removal goes: core.shm's objects nest (apps/NAME/rxpackets.counter,
// and any name a program gives, e.g. shm/selftest/manyobj/1).
constexpr int kRunDirDepth = 32;

// Removes directory name in dirfd and what is in it (depth levels below it), never following a
// link. Returns whether it is gone.
bool remove_tree(int dirfd, const char* name, int depth) {
  Fd fd(openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return errno == ENOENT;
  DIR* dir = fdopendir(dup(fd.get()));
  if (!dir) return false;
  while (const dirent* e = readdir(dir)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
    struct stat st;
    if (fstatat(fd.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (depth > 0) remove_tree(fd.get(), e->d_name, depth - 1);
    } else {
      unlinkat(fd.get(), e->d_name, 0);
    }
  }
  closedir(dir);
  return unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
}

// "STARTTIME BOOTID" of process pid (field 22 of /proc/PID/stat: when it started, in clock ticks
// since boot), or "" when there is no such process.
std::string identity(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return "";
  const auto paren = line.rfind(')');  // the command name before it may hold spaces and ')'
  if (paren == std::string::npos) return "";
  std::istringstream fields(line.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
  }
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::string boot_id;
  std::getline(boot, boot_id);
  return field + " " + boot_id;
}

// What a lock file says: its PID and identity ("" when empty or unreadable).
std::string read_lock(int fd, int* pid) {
  char buf[128] = {};
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  *pid = 0;
  if (n <= 0) return "";
  std::istringstream s(std::string(buf, static_cast<size_t>(n)));
  std::string start, boot;
  if (!(s >> *pid >> start >> boot)) return "";
  return start + " " + boot;
}

bool is_run_name(const char* name) {
  // PID or PID-N
  const char* p = name;
  if (!std::isdigit(static_cast<unsigned char>(*p))) return false;
  while (std::isdigit(static_cast<unsigned char>(*p))) ++p;
  if (*p == '-') {
    ++p;
    if (!std::isdigit(static_cast<unsigned char>(*p))) return false;
    while (std::isdigit(static_cast<unsigned char>(*p))) ++p;
  }
  return *p == '\0';
}

// This process's run: its lock and the directory to remove at the end.
struct Run {
  Fd lock;
  Fd base;
  std::string name;
  pid_t owner = 0;  // a child forked without exec inherits this, and must not remove it
} run;

void close_run() {
  if (run.base.get() >= 0 && run.owner == getpid()) {
    remove_tree(run.base.get(), run.name.c_str(), kRunDirDepth);
  }
  run.base = Fd();
  run.name.clear();
  run.lock = Fd();  // the lock goes last: until the directory is gone, it is ours
}

}  // namespace

extern "C" {

int snabb_rundir_open(const char* path_arg, int mode, int gid, int mine) {
  std::string path = path_arg;
  if (path.empty()) return fail(-2, "empty directory name");
  if (path[0] != '/') {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return fail_errno("getcwd");
    path = std::string(cwd) + "/" + path;
  }
  auto todo = components(path);
  Fd fd(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string at = "";  // the path of fd, as the walk went
  int links = 0;
  bool made = false;
  while (!todo.empty()) {
    const std::string part = todo.front();
    todo.pop_front();
    const std::string next = at + "/" + part;
    const bool last = todo.empty();
    struct stat st;
    made = false;
    if (fstatat(fd.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return fail_errno(next);
      made = mkdirat(fd.get(), part.c_str(), static_cast<mode_t>(mode)) == 0;
      if (!made && errno != EEXIST) return fail_errno(next);
      if (fstatat(fd.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return fail_errno(next);
    }
    if (S_ISLNK(st.st_mode)) {
      // The directory it is in is trusted; the link is when root or we made it.
      if (st.st_uid != 0 && st.st_uid != geteuid()) {
        return fail(-1, next + ": a symbolic link owned by " + user_name(st.st_uid) +
                            ", not by you or root; not followed");
      }
      if (++links > 40) return fail(-2, path + ": too many symbolic links");
      char target[4096];
      const ssize_t n = readlinkat(fd.get(), part.c_str(), target, sizeof target - 1);
      if (n < 0) return fail_errno(next);
      target[n] = '\0';
      auto parts = components(target);
      todo.insert(todo.begin(), parts.begin(), parts.end());
      if (target[0] == '/') {
        fd = Fd(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        at = "";
      }
      continue;
    }
    Fd next_fd(openat(fd.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next_fd.get() < 0) return fail_errno(next);
    if (fstat(next_fd.get(), &st) != 0) return fail_errno(next);
    const std::string why = distrust(st, next, mine && last);
    if (!why.empty()) return fail(-1, why);
    fd = std::move(next_fd);
    at = part == ".." ? at.substr(0, at.rfind('/')) : next;
  }
  if (at.empty()) at = "/";
  Fd dir(openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return fail_errno(at);
  if ((made || mine == 2) && !set_mode(dir.get(), at, mode, mine == 2 ? gid : -1)) return -2;
  if (faccessat(dir.get(), ".", W_OK | X_OK, AT_EACCESS) != 0) return fail_errno(at);
  return dir.release();
}

int snabb_rundir_mkdir(int dirfd, const char* name, int mode, int gid) {
  if (mkdirat(dirfd, name, static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
    return fail_errno(name);
  }
  Fd fd(openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0) return fail_errno(name);
  const std::string why = distrust(st, name, true);
  if (!why.empty()) return fail(-1, why);
  if (!set_mode(fd.get(), name, mode, gid)) return -1;
  return fd.release();
}

int snabb_rundir_new(int basefd, int dir_mode, int file_mode, int gid, char* name, int size) {
  // Made and locked under a name no sweep takes for a run directory until locked, then renamed.
  const std::string pid = std::to_string(getpid());
  std::string made;
  for (unsigned n = 0; made.empty(); ++n) {
    const std::string tmp = ".new-" + pid + "-" + std::to_string(n);
    if (mkdirat(basefd, tmp.c_str(), 0700) == 0) {
      made = tmp;
    } else if (errno != EEXIST || n > 1000) {
      return fail_errno(tmp);
    }
  }
  Fd fd(openat(basefd, made.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) fail_errno(made);
  const bool ready = fd.get() >= 0 && set_mode(fd.get(), made, dir_mode, gid) &&
                     snabb_rundir_lock(fd.get(), file_mode, gid) == 0;
  for (int n = 1; ready && n <= 100; ++n) {
    const std::string final_name = n == 1 ? pid : pid + "-" + std::to_string(n);
    if (renameat2(basefd, made.c_str(), basefd, final_name.c_str(), RENAME_NOREPLACE) == 0) {
      run.base = Fd(fcntl(basefd, F_DUPFD_CLOEXEC, 0));
      run.name = final_name;
      run.owner = getpid();
      static const bool registered = std::atexit(close_run) == 0;
      (void)registered;
      std::snprintf(name, static_cast<size_t>(size), "%s", final_name.c_str());
      return fd.release();
    }
    if (errno != EEXIST) {
      fail_errno(final_name);
      break;
    }
    if (n == 100) fail(-1, pid + ", " + pid + "-2 ... " + final_name + ": all taken");
  }
  remove_tree(basefd, made.c_str(), 2);
  run.lock = Fd();
  return -1;
}

int snabb_rundir_create(int dirfd, const char* name, int mode, int gid) {
  if (std::strchr(name, '/') || !std::strcmp(name, "..") || !*name) {
    return fail(-1, std::string(name) + ": not a file name");
  }
  if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) return fail_errno(name);
  Fd fd(openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               static_cast<mode_t>(mode)));
  if (fd.get() < 0) return fail_errno(name);
  if (!set_mode(fd.get(), name, mode, gid)) return -1;
  return fd.release();
}

int snabb_rundir_lock(int dirfd, int mode, int gid) {
  Fd fd(
      openat(dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, static_cast<mode_t>(mode)));
  struct stat st;
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0) return fail_errno("lock");
  if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    return fail(-1, "lock: not a file of yours");
  }
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return fail_errno("lock");
    int pid;
    read_lock(fd.get(), &pid);
    return pid > 0 ? pid : fail(-1, "lock: held by a process that has not said who it is yet");
  }
  const std::string line = std::to_string(getpid()) + " " + identity(getpid()) + "\n";
  if (ftruncate(fd.get(), 0) != 0 ||
      pwrite(fd.get(), line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()) ||
      !set_mode(fd.get(), "lock", mode, gid)) {
    return fail_errno("lock");
  }
  run.lock = std::move(fd);
  return 0;
}

void snabb_rundir_close(void) { close_run(); }

int snabb_rundir_sweep(int basefd) {
  DIR* dir = fdopendir(fcntl(basefd, F_DUPFD_CLOEXEC, 0));
  if (!dir) return 0;
  int removed = 0;
  while (const dirent* e = readdir(dir)) {
    if (!is_run_name(e->d_name) && std::strncmp(e->d_name, ".new-", 5) != 0) continue;
    Fd run_dir(openat(basefd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (run_dir.get() < 0) continue;
    Fd lock(openat(run_dir.get(), "lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    // Free, and written (so its process had it): that process has died. No lock, or an empty one:
    // a directory being made (or one of an older snabb), left alone, and not even tried: its maker
    // is about to take that lock, and found it held while the sweep tried it ("held by a process
    // that has not said who it is yet", as two workers started together).
    int holder;
    if (lock.get() < 0 || read_lock(lock.get(), &holder).empty() ||
        flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
      continue;
    }
    if (remove_tree(basefd, e->d_name, kRunDirDepth)) ++removed;
  }
  closedir(dir);
  return removed;
}

int snabb_rundir_owned_by(const char* path, int pid) {
  Fd fd(open((std::string(path) + "/lock").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return fail_errno(std::string(path) + "/lock");
  int holder;
  const std::string who = read_lock(fd.get(), &holder);
  if (flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return 0;  // nobody holds it: ended
  if (errno != EWOULDBLOCK) return fail_errno(std::string(path) + "/lock");
  return holder == pid && !who.empty() && who == identity(pid) ? 1 : -1;
}

int snabb_rundir_gid(const char* name) {
  const group* g = getgrnam(name);
  if (!g) return fail(-1, std::string("no group named ") + name);
  return static_cast<int>(g->gr_gid);
}

}  // extern "C"

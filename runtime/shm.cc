// shm: core.shm's files (shm.h): objects mapped MAP_SHARED from files in the run directory.
#include "runtime/shm.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace {

using snabb::runtime::set_error;

// A descriptor closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int fail(const std::string& what) {
  set_error(what + ": " + std::strerror(errno));
  return -1;
}

// Gives a file or directory just made its mode (umask aside) and group.
bool set_owner(int fd, const std::string& what, int mode, int gid) {
  if (gid >= 0 && fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0) {
    return fail(what) == 0;
  }
  if (fchmod(fd, static_cast<mode_t>(mode)) != 0) return fail(what) == 0;
  return true;
}

// mkdir -p path: each missing directory made with mode and gid.
int make_dirs(const std::string& path, int mode, int gid) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    const std::string dir = path.substr(0, i);
    if (mkdir(dir.c_str(), 0700) == 0) {
      Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (fd.get() < 0 || !set_owner(fd.get(), dir, mode, gid)) return fail(dir);
    } else if (errno != EEXIST) {
      return fail(dir);
    }
  }
  return 0;
}

std::string parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? std::string() : path.substr(0, slash);
}

// Removes name in dirfd and, a directory, what is in it; never follows a link.
bool remove_at(int parent_fd, const char* name) {
  struct stat st;
  if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  if (!S_ISDIR(st.st_mode)) return unlinkat(parent_fd, name, 0) == 0;
  const int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* dir = fdopendir(fd);  // owns fd
  if (!dir) {
    close(fd);
    return false;
  }
  bool ok = true;
  while (const dirent* e = readdir(dir)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
    ok = remove_at(dirfd(dir), e->d_name) && ok;
  }
  closedir(dir);
  return unlinkat(parent_fd, name, AT_REMOVEDIR) == 0 && ok;
}

}  // namespace

extern "C" {

void* snabb_shm_map(const char* path, size_t size, int create, int readonly, int file_mode,
                    int dir_mode, int gid) {
  const std::string p(path);
  if (create) {
    const std::string dir = parent(p);
    if (!dir.empty() && make_dirs(dir, dir_mode, gid) != 0) return nullptr;
  }
  // Made here (O_EXCL) or there already: only a file made here gets the modes and group.
  bool made = false;
  int raw = -1;
  if (create) {
    raw = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               static_cast<mode_t>(file_mode));
    made = raw >= 0;
    if (!made && errno == EEXIST) raw = open(path, O_RDWR | O_CLOEXEC);
  } else {
    raw = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  }
  Fd fd(raw);
  struct stat st;
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0) return fail(p), nullptr;
  if (!S_ISREG(st.st_mode)) return set_error(p + ": not a shared-memory object (a file)"), nullptr;
  if (made && !set_owner(fd.get(), p, file_mode, gid)) return nullptr;
  if (create) {
    if (static_cast<size_t>(st.st_size) < size &&
        ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
      return fail(p), nullptr;
    }
  } else if (static_cast<size_t>(st.st_size) < size) {
    set_error(p + ": holds " + std::to_string(st.st_size) + " bytes, less than the " +
              std::to_string(size) + " of the type it is opened as");
    return nullptr;
  }
  void* mem =
      mmap(nullptr, size, readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (mem == MAP_FAILED) return fail(p + ": mmap"), nullptr;
  return mem;
}

int snabb_shm_unmap(void* address, size_t size) {
  return munmap(address, size) == 0 ? 0 : fail("munmap");
}

int snabb_shm_mkdir(const char* path, int dir_mode, int gid) {
  return make_dirs(path, dir_mode, gid);
}

int snabb_shm_unlink(const char* path) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : fail(path);
  return remove_at(AT_FDCWD, path) ? 1 : fail(path);
}

int snabb_shm_exists(const char* path) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  close(fd);
  return 1;
}

int snabb_shm_alias(const char* path, const char* target, int dir_mode, int gid) {
  const std::string dir = parent(path);
  if (!dir.empty() && make_dirs(dir, dir_mode, gid) != 0) return -1;
  return symlink(target, path) == 0 ? 0 : fail(path);
}

long snabb_shm_children(const char* path, char* buf, long size) {
  DIR* dir = opendir(path);
  if (!dir) return fail(path);
  long used = 0;
  while (const dirent* e = readdir(dir)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
    const long n = static_cast<long>(std::strlen(e->d_name)) + 1;
    if (used + n <= size) std::memcpy(buf + used, e->d_name, static_cast<size_t>(n));
    used += n;
  }
  closedir(dir);
  return used;
}

}  // extern "C"

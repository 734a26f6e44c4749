// worker: core.worker's processes (worker.h).
#include "runtime/worker.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

extern "C" {

int snabb_worker_start(const char* title, const char* luacode) {
  // The environment, with the code, made before fork: the child may only make async-signal-safe
  // calls until exec (the parent may have threads).
  const std::string code = std::string("SNABB_PROGRAM_LUACODE=") + luacode;
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "SNABB_PROGRAM_LUACODE=", 22) != 0) env.push_back(*e);
  }
  env.push_back(const_cast<char*>(code.c_str()));
  env.push_back(nullptr);
  char* const argv[] = {const_cast<char*>(title), nullptr};
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    snabb::runtime::set_error(std::string("worker: fork: ") + std::strerror(errno));
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGHUP);
    if (getppid() != parent) _exit(1);  // the parent died before the line above
    execve("/proc/self/exe", argv, env.data());
    _exit(127);
  }
  return pid;
}

int snabb_worker_status(int pid, int* status) {
  int wstatus = 0;
  const pid_t r = waitpid(pid, &wstatus, WNOHANG);
  if (r == 0) return 1;
  if (r < 0) {
    snabb::runtime::set_error("worker " + std::to_string(pid) + ": " + std::strerror(errno));
    return -1;
  }
  *status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return 0;
}

}  // extern "C"

// worker: core.worker's processes (worker.h).
#include "runtime/worker.h"

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
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

int snabb_worker_status(int pid, int* status, int* signo) {
  int wstatus = 0;
  const pid_t r = waitpid(pid, &wstatus, WNOHANG);
  if (r == 0) return 1;
  if (r < 0) {
    snabb::runtime::set_error("worker " + std::to_string(pid) + ": " + std::strerror(errno));
    return -1;
  }
  *status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  *signo = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
  return 0;
}

int snabb_worker_set_cpu(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) {
    snabb::runtime::set_error("CPU " + std::to_string(cpu) + " does not exist");
    return -1;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    snabb::runtime::set_error("CPU " + std::to_string(cpu) +
                              ": sched_setaffinity: " + std::strerror(errno));
    return -1;
  }
  return 0;
}

int snabb_worker_cpu_allowed(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return CPU_ISSET(cpu, &set) ? 1 : 0;
}

const char* snabb_worker_signal_name(int signo) {
  // sigabbrev_np (glibc 2.32) gives "KILL"; kept in a buffer per thread with the prefix.
  static thread_local char name[32];
  const char* abbrev = sigabbrev_np(signo);
  if (abbrev) {
    std::snprintf(name, sizeof name, "SIG%s", abbrev);
  } else {
    std::snprintf(name, sizeof name, "signal %d", signo);
  }
  return name;
}

}  // extern "C"

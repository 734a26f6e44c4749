// rundir: the file-system side of a run directory (observe/rundir.lua), in one place, so that no
// other local user can steer what a run writes. A directory is used only when every directory on
// its path is owned by root or by us and writable by nobody else (a sticky one such as /tmp is
// fine), and the run's own directories are ours; they are made 0700 (0750 with a group), files 0600
// (0640), each created afresh with O_EXCL | O_NOFOLLOW through a descriptor of its verified
// directory. A `lock` file, flock()ed for the run's life, holds "PID STARTTIME BOOTID": the kernel
// drops the lock when the process dies however it dies, which is how dead runs' directories are
// found and how a second process is kept out of a --rundir in use.
#pragma once
#include "runtime/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
/* Failures return a negative number, and snabb_error() (runtime/error.h) says why, e.g.
   "/tmp/snabb-1000: owned by nobody (uid 65534)". */
/* Opens directory path (absolute or relative), making the missing ones with mode (and gid >= 0 as
   their group). Every directory on the way must be owned by root or us, not writable by others
   (unless sticky); symbolic links are followed only when root or we own them. mine != 0: the last
   must be ours and writable by nobody else; mine == 2: made here or not, it gets mode and gid
   (else only when made here, and no gid). Returns a
   descriptor, -1 when the path is unsafe, -2 when the system says no (snabb_error). */
int snabb_rundir_open(const char* path, int mode, int gid, int mine);
/* Directory name in dirfd: made (mode, gid) or, when it exists, checked as open(mine == 2) does.
   Returns a descriptor or -1 (snabb_error). */
int snabb_rundir_mkdir(int dirfd, const char* name, int mode, int gid);
/* A new run directory in basefd, named PID (PID-2, PID-3, ... when taken: a process in another
   PID namespace can have our PID), with its lock taken (snabb_rundir_lock) before it appears under
   that name, so that no sweep can take it for a dead process's. It is removed at
   snabb_rundir_close or when the process exits, whichever comes first. Returns a descriptor and
   its name in name[size], or -1 (snabb_error). */
int snabb_rundir_new(int basefd, int dir_mode, int file_mode, int gid, char* name, int size);
/* A new, empty file name in dirfd (what was there is unlinked first, never followed or truncated),
   opened O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW. Returns a descriptor or -1. */
int snabb_rundir_create(int dirfd, const char* name, int mode, int gid);
/* Takes the run directory's lock for this process's life (until snabb_rundir_close) and writes
   this process's identity in it. Returns 0; the holder's PID (> 0) when another process has it;
   -1 on error. */
int snabb_rundir_lock(int dirfd, int mode, int gid);
/* Ends the run: removes the directory snabb_rundir_new made, drops the lock. */
void snabb_rundir_close(void);
/* Removes the run directories in basefd (named PID or PID-N, or being made) whose process has
   died: their lock is free, and was written. (Not by whether a process PID exists, as Snabb does:
   processes in other PID namespaces, e.g. Bazel's sandboxes, share /tmp and have the same PIDs.)
   Returns how many. */
int snabb_rundir_sweep(int basefd);
/* Whether run directory path belongs to live process pid: 1 yes; 0 its process has ended (the lock
   is free); -1 the lock is held but not by pid (its PID was reused; pid is someone else); -2 error
   (no lock file, not allowed to read it). */
int snabb_rundir_owned_by(const char* path, int pid);
/* The id of group name, or -1 (snabb_error). */
int snabb_rundir_gid(const char* name);
// END FFI

#ifdef __cplusplus
}
#endif

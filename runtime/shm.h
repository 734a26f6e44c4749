// shm: the file side of core.shm, Snabb's named shared-memory objects. An object is a file in the
// process's run directory (observe/rundir.lua: RUNDIR/NAME, e.g. apps/NAME/rxpackets.counter)
// mapped MAP_SHARED, so that another process mapping the same file sees the same memory: counters
// and histograms for monitoring tools. core.shm (runtime/shm.lua) resolves names to paths; these
// functions take paths. Files and directories are created with the run directory's modes (0600 and
// 0700, or 0640 and 0750 with --group) and group; symbolic links are never followed when removing.
#pragma once
#include <stddef.h>

#include "runtime/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// BEGIN FFI
/* Failures return NULL or a negative number; snabb_error() says why ("PATH: No such file ..."). */
/* Maps the object at path, size bytes. create: the file and its missing directories are made
   (file_mode, dir_mode, gid >= 0 as their group), and a file shorter than size grown to it (never
   shrunk: another process may map it whole). Otherwise the file must exist and hold size bytes.
   readonly: mapped PROT_READ. Returns the address, or NULL. */
void *snabb_shm_map(const char *path, size_t size, int create, int readonly, int file_mode,
                    int dir_mode, int gid);
/* Unmaps a mapping of snabb_shm_map. Returns 0 or -1. */
int snabb_shm_unmap(void *address, size_t size);
/* Makes directory path and its missing parents (dir_mode, gid). Returns 0 or -1. */
int snabb_shm_mkdir(const char *path, int dir_mode, int gid);
/* Removes path, a file, link or directory tree (links are removed, never followed). Returns 1 when
   removed, 0 when there was nothing, -1 on error. */
int snabb_shm_unlink(const char *path);
/* Whether path can be opened for reading (a link to a missing object cannot): 1 or 0. */
int snabb_shm_exists(const char *path);
/* Makes path a symbolic link to target, with the missing directories of path. Returns 0 or -1. */
int snabb_shm_alias(const char *path, const char *target, int dir_mode, int gid);
/* The names in directory path, each ended by a NUL, written to buf (size bytes). Returns the
   bytes they take (when more than size, call again with that room), or -1 (not a directory). */
long snabb_shm_children(const char *path, char *buf, long size);
// END FFI

#ifdef __cplusplus
}
#endif

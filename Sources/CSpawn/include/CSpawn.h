// A child process that inherits only stdin, stdout and stderr: posix_spawn file actions that close every
// other descriptor (glibc's posix_spawn_file_actions_addclosefrom_np, which Swift does not see without
// _GNU_SOURCE).
#ifndef CSPAWN_H
#define CSPAWN_H
#include <spawn.h>

int cspawn_close_from(posix_spawn_file_actions_t *actions, int from);

#endif

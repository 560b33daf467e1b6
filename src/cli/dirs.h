/* Where QUIC-S keeps a user's files: the XDG base directories. Configuration, the daemons'
 * endpoint files and secrets live in $XDG_CONFIG_HOME/quics (default ~/.config/quics); data
 * such as the client index and the server store in $XDG_DATA_HOME/quics (default
 * ~/.local/share/quics). Several clients run on one machine by giving each its own XDG
 * directories. Not thread-safe (reads the environment). */
#ifndef QS_CLI_DIRS_H
#define QS_CLI_DIRS_H

#include <stdbool.h>
#include <stddef.h>

struct qs_dirs {
	char *config; /* absolute path of the quics config directory */
	char *data;   /* absolute path of the quics data directory */
};

/* Resolves both directories from the environment. An XDG variable that is unset, empty or not
 * an absolute path is ignored, as the XDG specification says, and the default under $HOME is
 * used. Creates nothing. *d is written only on success; release it with qs_dirs_release.
 * Errors: QS_ENOENT (a default is needed and HOME is unset, empty or relative), QS_E2BIG
 * (longer than PATH_MAX), QS_ENOMEM. */
int qs_dirs_init(struct qs_dirs *d);
void qs_dirs_release(struct qs_dirs *d);

/* Creates both directories and any missing parents with mode 0700. A quics directory that
 * already exists is made 0700 if it allowed group or other access (it holds secrets); existing
 * parents are left alone. Errors: QS_EEXIST (a component is not a directory), QS_ENOENT,
 * QS_EACCES, QS_EIO, QS_ENOSPC, QS_ENOMEM. */
int qs_dirs_create(const struct qs_dirs *d);

/* Creates the absolute directory path and missing parents (mode 0700); errors as above plus
 * QS_EINVAL (a relative path). */
int qs_dir_create(const char *path);

/* True if path is dir or lies below it, compared by whole components ("/a/bc" is not within
 * "/a/b"; everything is within "/"). Both are absolute paths as the user or the daemon gave
 * them; neither is resolved. */
bool qs_dirs_within(const char *dir, const char *path);

/* Writes path into buf for display, with the value of $HOME at its start shown as "~"
 * ("~/.config/quics/qic.api"); cut to cap - 1 bytes. Returns buf. */
const char *qs_dirs_display(const char *path, char *buf, size_t cap);

#endif

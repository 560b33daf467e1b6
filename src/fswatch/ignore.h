/* Ignore rules of a synced root (docs/fswatch.md, "Ignore rules"): the gitignore subset that
 * matters for a sync root, parsed from the bytes of a `.quicsignore` file, plus the client's
 * own files, which are always ignored. Pure: no I/O, no clock. A parsed rule set is
 * immutable, so one may be shared by any number of threads. */
#ifndef QS_FSWATCH_IGNORE_H
#define QS_FSWATCH_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/path.h"

/* The rule file in the root of a synced folder. */
#define QS_IGNORE_FILE ".quicsignore"
/* Always ignored, at any depth: the client's state directory (its marker lives there) and
 * its temp files (a name starting with the prefix). */
#define QS_IGNORE_STATE_DIR ".quics"
#define QS_IGNORE_TEMP_PREFIX ".quics-tmp-"

/* Limits on a rule file: its size, one line (without its end-of-line), and the rules it
 * holds (comments and blank lines do not count). */
#define QS_IGNORE_MAX_BYTES (64 * 1024)
#define QS_IGNORE_LINE_MAX 4096
#define QS_IGNORE_MAX_RULES 1000

struct qs_ignore;

/* Where parsing stopped: the 1-based line of the first problem. */
struct qs_ignore_error {
	size_t line;
};

/* Parses len bytes of rule text (borrowed; "\n" or "\r\n" line ends) into a new rule set.
 * len 0 gives a set with the built-in rules only. *out is written only on success; free it
 * with qs_ignore_free. On failure, if err is not NULL, err->line names the line (0 when
 * the whole file is at fault). Errors:
 *   QS_E2BIG   the text is longer than QS_IGNORE_MAX_BYTES, a line longer than
 *              QS_IGNORE_LINE_MAX, or more than QS_IGNORE_MAX_RULES rules;
 *   QS_EPROTO  a line that is not a pattern: a NUL byte, invalid UTF-8, an empty pattern
 *              ("!", "/"), a pattern ending in a lone backslash, an unterminated "[",
 *              a reversed range ("[z-a]"), an unknown "[:class:]", a "/" inside "[...]";
 *   QS_ENOMEM. */
int qs_ignore_parse(const char *text, size_t len, struct qs_ignore **out,
		    struct qs_ignore_error *err);

/* Frees a rule set (NULL is fine). */
void qs_ignore_free(struct qs_ignore *ig);

/* Number of rules parsed (the built-in rules not counted). */
size_t qs_ignore_rule_count(const struct qs_ignore *ig);

/* True if path p (a file, symlink or other non-directory unless is_dir) is ignored: it is a
 * built-in name, or the last rule matching it excludes it, or one of its parent directories
 * is ignored (a path below an ignored directory cannot be re-included). ig NULL means the
 * built-in rules only. */
bool qs_ignore_match(const struct qs_ignore *ig, const struct qs_path *p, bool is_dir);

/* Like qs_ignore_match for a path whose parent directories are already known not to be
 * ignored (a scanner descending from the root): only the last component's rules are
 * evaluated, so the result equals qs_ignore_match's under that precondition. */
bool qs_ignore_match_leaf(const struct qs_ignore *ig, const struct qs_path *p, bool is_dir);

#endif

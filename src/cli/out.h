/* Output of the front ends: a daemon's JSON answer printed as-is for --json, or as aligned
 * text and tables for people; byte counts; a progress bar drawn only on a terminal. Text from
 * the daemon (file names, messages) is printed with control characters replaced by '?', so a
 * name cannot drive the user's terminal. Widths count UTF-8 code points (wide characters are
 * counted as one column). Not thread-safe (writes to the given stream). */
#ifndef QS_CLI_OUT_H
#define QS_CLI_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Prints v as JSON indented by two spaces, members in the order received, and a newline.
 * Errors: QS_EIO (the write failed), QS_ENOMEM. */
int qs_out_json(FILE *f, const json_t *v);

/* Prints an object for people: one "key: value" line per member, values aligned, '_' in keys
 * shown as spaces; true/false as yes/no, null as "-"; nested objects indented by two spaces;
 * arrays of scalars joined with ", "; arrays of objects as "- " items. Errors: QS_EINVAL (not
 * an object), QS_EIO. */
int qs_out_object(FILE *f, const json_t *obj);

struct qs_out_col {
	const char *key;   /* member of each row object */
	const char *title; /* header */
	bool right;        /* right-align (numbers) */
};

/* Prints an array of objects as a table: a header line, then one line per row; columns
 * separated by two spaces, sized to their widest cell; missing members shown as "-". An empty
 * array prints the header only. Errors: QS_EINVAL (not an array), QS_EIO, QS_ENOMEM. */
int qs_out_table(FILE *f, const json_t *rows, const struct qs_out_col *cols, size_t ncols);

/* Formats a byte count: "512 B", "1.5 KiB", "20.0 MiB", ... up to EiB. */
void qs_out_bytes(uint64_t n, char *buf, size_t cap);

/* Formats a bar of width cells and the percentage: "[#####.....]  50%". done is clamped to
 * total; a total of 0 counts as complete. */
void qs_out_bar(char *buf, size_t cap, uint64_t done, uint64_t total, unsigned width);

/* A progress line redrawn in place ("\r...") while work goes on. Draws only when tty is set,
 * which qs_progress_init sets when f is a terminal. */
struct qs_progress {
	FILE *f;
	bool tty;
	bool drawn;
	unsigned width; /* bar cells (default 30) */
};
void qs_progress_init(struct qs_progress *p, FILE *f);
/* Draws "label [#####.....]  50%  1.0 MiB / 2.0 MiB". */
void qs_progress_update(struct qs_progress *p, const char *label, uint64_t done, uint64_t total);
/* Ends the line if a bar was drawn. */
void qs_progress_end(struct qs_progress *p);

#endif

/* Human and JSON output. Invariant: every byte that came from a daemon passes through
 * put_text, which replaces control characters, before it reaches the stream. */
#include "cli/out.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/utf8.h"

#define OUT_INDENT 2

int qs_out_json(FILE *f, const json_t *v)
{
	if (json_dumpf(v, f, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0 || fputc('\n', f) == EOF)
		return QS_EIO;
	return 0;
}

/* Display width of s: code points, counting malformed bytes as one each. */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		w += (*p & 0xc0) != 0x80;
	return w;
}

/* Writes s with control characters and malformed UTF-8 replaced by '?'. */
static void put_text(FILE *f, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : qs_utf8_sequence((const unsigned char *)s + i, n - i);
		bool control = c < 0x20 || c == 0x7f ||
			       (len == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0);
		if (len == 0 || control) {
			fputc('?', f);
			i += len != 0 ? len : 1;
			continue;
		}
		fwrite(s + i, 1, len, f);
		i += len;
	}
}

static void pad(FILE *f, size_t n)
{
	while (n-- > 0)
		fputc(' ', f);
}

/* Formats a scalar for people; arrays of scalars joined with ", ". Returns false for values
 * that need more than one line (objects, arrays holding containers). */
static bool scalar_text(const json_t *v, char *buf, size_t cap)
{
	switch (json_typeof(v)) {
	case JSON_STRING: snprintf(buf, cap, "%s", json_string_value(v)); return true;
	case JSON_INTEGER:
		snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
		return true;
	case JSON_REAL: snprintf(buf, cap, "%.6g", json_real_value(v)); return true;
	case JSON_TRUE: snprintf(buf, cap, "yes"); return true;
	case JSON_FALSE: snprintf(buf, cap, "no"); return true;
	case JSON_NULL: snprintf(buf, cap, "-"); return true;
	case JSON_OBJECT: return false;
	case JSON_ARRAY: break;
	}
	size_t used = 0, i;
	json_t *e;
	buf[0] = '\0';
	if (json_array_size(v) == 0) {
		snprintf(buf, cap, "-");
		return true;
	}
	json_array_foreach(v, i, e)
	{
		char one[256];
		if (json_is_object(e) || json_is_array(e) || !scalar_text(e, one, sizeof(one)))
			return false;
		if (used < cap)
			used += (size_t)snprintf(buf + used, cap - used, "%s%s", i > 0 ? ", " : "",
						 one);
	}
	return true;
}

static void put_key(FILE *f, const char *key, size_t width)
{
	char *shown = strdup(key);
	if (shown != NULL) {
		for (char *p = shown; *p != '\0'; p++)
			*p = *p == '_' ? ' ' : *p;
		put_text(f, shown);
		free(shown);
	}
	fputc(':', f);
	pad(f, width - text_width(key) + 1);
}

static void put_object(FILE *f, const json_t *obj, size_t indent, const char *first_prefix);

static void put_value(FILE *f, const json_t *v, size_t indent)
{
	char text[4096];
	if (scalar_text(v, text, sizeof(text))) {
		put_text(f, text);
		fputc('\n', f);
		return;
	}
	fputc('\n', f);
	if (json_is_object(v)) {
		put_object(f, v, indent + OUT_INDENT, NULL);
		return;
	}
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		if (json_is_object(e)) {
			put_object(f, e, indent + OUT_INDENT + 2, "- ");
		} else {
			pad(f, indent + OUT_INDENT);
			fputs("- ", f);
			put_value(f, e, indent + OUT_INDENT + 2);
		}
	}
}

/* Prints members at indent; the first line starts with first_prefix in place of its last
 * two indent columns (for "- " list items). */
static void put_object(FILE *f, const json_t *obj, size_t indent, const char *first_prefix)
{
	const char *key;
	json_t *v;
	size_t width = 0;
	json_object_foreach((json_t *)obj, key, v)
	{
		size_t w = text_width(key);
		width = w > width ? w : width;
	}
	bool first = true;
	json_object_foreach((json_t *)obj, key, v)
	{
		if (first && first_prefix != NULL) {
			pad(f, indent - strlen(first_prefix));
			fputs(first_prefix, f);
		} else {
			pad(f, indent);
		}
		first = false;
		put_key(f, key, width);
		put_value(f, v, indent);
	}
}

int qs_out_object(FILE *f, const json_t *obj)
{
	if (!json_is_object(obj))
		return QS_EINVAL;
	put_object(f, obj, 0, NULL);
	return ferror(f) ? QS_EIO : 0;
}

static void cell_text(const json_t *row, const char *key, char *buf, size_t cap)
{
	const json_t *v = json_object_get(row, key);
	if (v == NULL || !scalar_text(v, buf, cap)) {
		char *dump = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;
		snprintf(buf, cap, "%s", dump != NULL ? dump : "-");
		free(dump);
	}
}

static void put_cell(FILE *f, const char *text, size_t width, bool right, bool last)
{
	size_t w = text_width(text);
	if (right)
		pad(f, width - w);
	put_text(f, text);
	if (!right && !last)
		pad(f, width - w);
	fputs(last ? "\n" : "  ", f);
}

int qs_out_table(FILE *f, const json_t *rows, const struct qs_out_col *cols, size_t ncols)
{
	if (!json_is_array(rows) || ncols == 0)
		return QS_EINVAL;
	size_t *width = calloc(ncols, sizeof(*width));
	if (width == NULL)
		return QS_ENOMEM;
	char text[1024];
	size_t i;
	json_t *row;
	for (size_t c = 0; c < ncols; c++)
		width[c] = text_width(cols[c].title);
	json_array_foreach(rows, i, row)
	{
		for (size_t c = 0; c < ncols; c++) {
			cell_text(row, cols[c].key, text, sizeof(text));
			size_t w = text_width(text);
			width[c] = w > width[c] ? w : width[c];
		}
	}
	for (size_t c = 0; c < ncols; c++)
		put_cell(f, cols[c].title, width[c], cols[c].right, c + 1 == ncols);
	json_array_foreach(rows, i, row)
	{
		for (size_t c = 0; c < ncols; c++) {
			cell_text(row, cols[c].key, text, sizeof(text));
			put_cell(f, text, width[c], cols[c].right, c + 1 == ncols);
		}
	}
	free(width);
	return ferror(f) ? QS_EIO : 0;
}

void qs_out_bytes(uint64_t n, char *buf, size_t cap)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	if (n < 1024) {
		snprintf(buf, cap, "%llu B", (unsigned long long)n);
		return;
	}
	double v = (double)n / 1024.0;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", v, units[u]);
}

/* done/total in parts, rounded down, without overflow; parts only when done == total. */
static unsigned share(uint64_t done, uint64_t total, unsigned parts)
{
	uint64_t v = total > UINT64_MAX / parts ? done / (total / parts) : done * parts / total;
	if (v >= parts && done < total)
		v = parts - 1;
	return v > parts ? parts : (unsigned)v;
}

void qs_out_bar(char *buf, size_t cap, uint64_t done, uint64_t total, unsigned width)
{
	if (total == 0)
		done = total = 1;
	if (done > total)
		done = total;
	unsigned cells = width > 0 ? share(done, total, width) : 0;
	unsigned pct = share(done, total, 100);
	if (cap < (size_t)width + 8) {
		snprintf(buf, cap, "%3u%%", pct);
		return;
	}
	size_t o = 0;
	buf[o++] = '[';
	for (unsigned i = 0; i < width; i++)
		buf[o++] = i < cells ? '#' : '.';
	snprintf(buf + o, cap - o, "] %3u%%", pct);
}

void qs_progress_init(struct qs_progress *p, FILE *f)
{
	p->f = f;
	p->tty = isatty(fileno(f)) == 1;
	p->drawn = false;
	p->width = 30;
}

void qs_progress_update(struct qs_progress *p, const char *label, uint64_t done, uint64_t total)
{
	if (!p->tty)
		return;
	char bar[160], a[32], b[32];
	qs_out_bar(bar, sizeof(bar), done, total, p->width < 120 ? p->width : 120);
	qs_out_bytes(done < total ? done : total, a, sizeof(a));
	qs_out_bytes(total, b, sizeof(b));
	fputc('\r', p->f);
	put_text(p->f, label);
	fprintf(p->f, " %s  %s / %s\x1b[K", bar, a, b);
	fflush(p->f);
	p->drawn = true;
}

void qs_progress_end(struct qs_progress *p)
{
	if (p->drawn)
		fputc('\n', p->f);
	p->drawn = false;
}

/* REST client over libcurl: one easy handle per client, reused so requests share a kept-alive
 * connection; bounded answers; errors turned into one line naming the daemon. Never sends the
 * token anywhere but 127.0.0.1 (no proxies, no redirects, http only). */
#include "cli/rest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "cli/dirs.h"

#define REST_ANSWER_MAX (64u << 20)
#define REST_CONNECT_TIMEOUT_MS 5000L
#define REST_DEFAULT_TIMEOUT_MS 120000u

const struct qs_daemon_info qs_daemon_qis = {"qis", "the server"};
const struct qs_daemon_info qs_daemon_qic = {"qic", "the client daemon"};

struct qs_rest {
	const struct qs_daemon_info *d;
	CURL *curl;
	struct qs_endpoint ep;
	bool have_ep;
	char file[512]; /* the endpoint file, for display ("~/.config/quics/qic.api"), or "" */
	uint32_t timeout_ms;
	long status;
	uint64_t connections;
	struct qs_buf answer;
	char curl_err[CURL_ERROR_SIZE];
	char err[512];
	char code[64];
};

static void set_err(struct qs_rest *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(struct qs_rest *r, const char *fmt, ...)
{
	int n = snprintf(r->err, sizeof(r->err), "%s: ", r->d->prog);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err + n, sizeof(r->err) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One line, no terminal control characters, whatever the daemon sent. */
	for (char *p = r->err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

struct qs_rest *qs_rest_new(const struct qs_daemon_info *d)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	struct qs_rest *r = qs_calloc(1, sizeof(*r));
	if (r == NULL) {
		curl_global_cleanup();
		return NULL;
	}
	r->d = d;
	r->timeout_ms = REST_DEFAULT_TIMEOUT_MS;
	qs_buf_init(&r->answer, REST_ANSWER_MAX);
	return r;
}

void qs_rest_free(struct qs_rest *r)
{
	if (r == NULL)
		return;
	if (r->curl != NULL)
		curl_easy_cleanup(r->curl);
	qs_buf_release(&r->answer);
	qs_endpoint_clear(&r->ep);
	qs_free(r);
	curl_global_cleanup();
}

int qs_rest_open(struct qs_rest *r, const char *config_dir)
{
	char *path = qs_endpoint_path(config_dir, r->d->prog);
	if (path == NULL) {
		set_err(r, "out of memory");
		return QS_ENOMEM;
	}
	qs_dirs_display(path, r->file, sizeof(r->file));
	int rc = qs_endpoint_read(path, &r->ep);
	qs_free(path);
	switch (rc) {
	case 0: r->have_ep = true; break;
	case QS_ENOENT: set_err(r, "%s is not running (no %s)", r->d->what, r->file); break;
	case QS_EACCES:
		set_err(r, "%s must be a regular file of yours with mode 0600; refusing to read it",
			r->file);
		break;
	default: set_err(r, "cannot read %s: %s", r->file, qs_strerror(rc)); break;
	}
	return rc;
}

void qs_rest_use(struct qs_rest *r, const struct qs_endpoint *e)
{
	r->ep = *e;
	r->have_ep = true;
	r->file[0] = '\0';
}

void qs_rest_set_timeout(struct qs_rest *r, uint32_t timeout_ms)
{
	r->timeout_ms = timeout_ms;
}

const char *qs_rest_error(const struct qs_rest *r)
{
	return r->err;
}

const char *qs_rest_error_code(const struct qs_rest *r)
{
	return r->code;
}

long qs_rest_status(const struct qs_rest *r)
{
	return r->status;
}

uint64_t qs_rest_connections(const struct qs_rest *r)
{
	return r->connections;
}

int qs_rest_escape(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			     *p == '~';
		size_t need = plain ? 1 : 3;
		if (cap - o <= need) {
			if (cap > 0)
				out[0] = '\0';
			return QS_E2BIG;
		}
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (cap == 0)
		return QS_E2BIG;
	out[o] = '\0';
	return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
	struct qs_rest *r = arg;
	size_t len = size * n; /* size is 1 per libcurl's contract */
	if (qs_buf_append(&r->answer, p, len) != 0)
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	return len;
}

/* Sets the options that stay the same for every request. */
static int curl_prepare(struct qs_rest *r)
{
	if (r->curl != NULL)
		return 0;
	r->curl = curl_easy_init();
	if (r->curl == NULL)
		return QS_ENOMEM;
	CURL *c = r->curl;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, REST_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	return 0;
}

/* Maps an HTTP error status to a QS_E* code. */
static int status_error(long status)
{
	switch (status) {
	case 400:
	case 422: return QS_EINVAL;
	case 401:
	case 403: return QS_EACCES;
	case 404: return QS_ENOENT;
	case 409: return QS_ECONFLICT;
	case 413:
	case 414:
	case 431: return QS_E2BIG;
	case 503: return QS_EAGAIN;
	default: return QS_EIO;
	}
}

static int transport_error(struct qs_rest *r, CURLcode cc)
{
	unsigned port = r->ep.port;
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		if (r->file[0] != '\0')
			set_err(r,
				"%s is not running (connection to 127.0.0.1:%u refused; %s is "
				"stale)",
				r->d->what, port, r->file);
		else
			set_err(r, "%s is not running (connection to 127.0.0.1:%u refused)",
				r->d->what, port);
		return QS_ECONN;
	case CURLE_OPERATION_TIMEDOUT:
		set_err(r, "%s did not answer within %.1f s", r->d->what,
			(double)r->timeout_ms / 1000.0);
		return QS_ETIMEDOUT;
	case CURLE_WRITE_ERROR:
		set_err(r, "the answer of %s is larger than %u MiB", r->d->what,
			REST_ANSWER_MAX >> 20);
		return QS_EPROTO;
	case CURLE_OUT_OF_MEMORY: set_err(r, "out of memory"); return QS_ENOMEM;
	default:
		set_err(r, "talking to %s at 127.0.0.1:%u failed: %s", r->d->what, port,
			r->curl_err[0] != '\0' ? r->curl_err : curl_easy_strerror(cc));
		return QS_ECONN;
	}
}

/* Turns an error answer into the message and code of its {"error":{...}} object. */
static int http_error(struct qs_rest *r, json_t *answer)
{
	json_t *e = json_object_get(answer, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	snprintf(r->code, sizeof(r->code), "%s", code != NULL ? code : "");
	if (r->status == 401)
		set_err(r, "%s refused the token%s%s (%s)", r->d->what,
			r->file[0] != '\0' ? " in " : "", r->file, msg != NULL ? msg : "HTTP 401");
	else if (msg != NULL)
		set_err(r, "%s", msg);
	else
		set_err(r, "%s answered HTTP %ld", r->d->what, r->status);
	return status_error(r->status);
}

static struct curl_slist *headers_make(const struct qs_rest *r, bool with_body)
{
	char auth[sizeof(r->ep.token) + 32];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->ep.token);
	struct curl_slist *h = curl_slist_append(NULL, auth);
	qs_wipe(auth, sizeof(auth));
	struct curl_slist *next = h;
	if (next != NULL)
		next = curl_slist_append(h, "Accept: application/json");
	if (next != NULL && with_body)
		next = curl_slist_append(h, "Content-Type: application/json");
	if (next != NULL) /* answer errors at once instead of waiting for 100-continue */
		next = curl_slist_append(h, "Expect:");
	if (next == NULL) {
		curl_slist_free_all(h);
		return NULL;
	}
	return h;
}

/* Sets the per-request options and performs it. */
static CURLcode perform(struct qs_rest *r, const char *method, const char *url, const char *text,
			struct curl_slist *h)
{
	CURL *c = r->curl;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	if (text != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	CURLcode cc = curl_easy_perform(c);
	long connects = 0;
	if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
		r->connections += (uint64_t)connects;
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	return cc;
}

static int answer_parse(struct qs_rest *r, json_t **out)
{
	json_t *j = json_loadb((const char *)r->answer.data, r->answer.len, JSON_DECODE_ANY, NULL);
	if (j == NULL) {
		set_err(r, "%s sent an answer that is not JSON (HTTP %ld)", r->d->what, r->status);
		return QS_EPROTO;
	}
	if (r->status < 200 || r->status > 299) {
		int rc = http_error(r, j);
		json_decref(j);
		return rc;
	}
	*out = j;
	return 0;
}

int qs_rest_request(struct qs_rest *r, const char *method, const char *path, const json_t *body,
		    json_t **out)
{
	r->err[0] = r->code[0] = r->curl_err[0] = '\0';
	r->status = 0;
	qs_buf_clear(&r->answer);
	if (!r->have_ep) {
		set_err(r, "no endpoint for %s", r->d->what);
		return QS_ESTATE;
	}
	char url[4096];
	if (path[0] != '/' || (size_t)snprintf(url, sizeof(url), "http://127.0.0.1:%u%s",
					       (unsigned)r->ep.port, path) >= sizeof(url)) {
		set_err(r, "bad request path");
		return QS_EINVAL;
	}
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	struct curl_slist *h = NULL;
	int rc = QS_ENOMEM;
	if ((body == NULL || text != NULL) && curl_prepare(r) == 0)
		h = headers_make(r, text != NULL);
	if (h != NULL) {
		CURLcode cc = perform(r, method, url, text, h);
		rc = cc != CURLE_OK ? transport_error(r, cc) : answer_parse(r, out);
		curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(h);
	} else {
		set_err(r, "out of memory");
	}
	free(text); /* jansson's default allocator */
	return rc;
}

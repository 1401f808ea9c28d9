/*
 * bench_util: the clock, fatal errors, a bounded TCP probe (so an
 * unreachable server is reported at once, whatever a client library's own
 * retry policy), CPU time, and a small JSON writer for the --json line.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_until_ns(int64_t t)
{
	struct timespec ts = { .tv_sec = t / 1000000000, .tv_nsec = t % 1000000000 };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

void bench_die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sluice-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

int bench_hostport(const char *s, int port_default, char *host, size_t host_len, int *port)
{
	const char *colon = strrchr(s, ':');
	size_t n = colon != NULL ? (size_t)(colon - s) : strlen(s);
	if (n == 0 || n >= host_len)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	*port = port_default;
	if (colon != NULL) {
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (*end != '\0' || p < 1 || p > 65535)
			return -1;
		*port = (int)p;
	}
	return 0;
}

/* Wait for a non-blocking connect to finish: 0, or -1 with errno set. */
static int bench_connect_wait(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int r;
	while ((r = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	if (r == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	int err = 0;
	socklen_t len = sizeof(err);
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -1;
	errno = err;
	return err == 0 ? 0 : -1;
}

int bench_tcp_connect(const char *host, int port, int timeout_ms, char *why, size_t why_len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	int rc = getaddrinfo(host, service, &hints, &ai);
	if (rc != 0) {
		snprintf(why, why_len, "%s", gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
		       (errno != EINPROGRESS || bench_connect_wait(fd, timeout_ms) != 0))) {
		snprintf(why, why_len, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

void bench_probe(const char *servers, int port_default, int timeout_ms)
{
	char list[1024], why[256] = "no server given";
	snprintf(list, sizeof(list), "%s", servers);
	for (char *save, *s = strtok_r(list, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save)) {
		char host[256];
		int port;
		if (bench_hostport(s, port_default, host, sizeof(host), &port) != 0)
			bench_die(2, "bad server address '%s' (expected HOST:PORT)", s);
		int fd = bench_tcp_connect(host, port, timeout_ms, why, sizeof(why));
		if (fd >= 0) {
			close(fd);
			return;
		}
	}
	bench_die(1, "cannot connect to %s: %s", servers, why);
}

double bench_cpu_s(double *user_s, double *sys_s)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	*sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	return *user_s + *sys_s;
}

static void bench_json_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A comma unless first in its container, then "key": inside an object. */
static void bench_json_key(struct bench_json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	if (key != NULL) {
		bench_json_quoted(j->f, key);
		fputc(':', j->f);
	}
}

void bench_json_begin(struct bench_json *j, const char *key, char open)
{
	if (j->depth > 0 || !j->first[0])
		bench_json_key(j, key);
	fputc(open, j->f);
	if (j->depth + 1 < BENCH_JSON_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

void bench_json_end(struct bench_json *j, char close)
{
	fputc(close, j->f);
	if (j->depth > 0)
		j->depth--;
}

void bench_json_str(struct bench_json *j, const char *key, const char *v)
{
	bench_json_key(j, key);
	if (v == NULL)
		fputs("null", j->f);
	else
		bench_json_quoted(j->f, v);
}

void bench_json_int(struct bench_json *j, const char *key, int64_t v)
{
	bench_json_key(j, key);
	fprintf(j->f, "%lld", (long long)v);
}

void bench_json_num(struct bench_json *j, const char *key, double v, int decimals)
{
	bench_json_key(j, key);
	fprintf(j->f, "%.*f", decimals, v);
}

void bench_json_bool(struct bench_json *j, const char *key, bool v)
{
	bench_json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

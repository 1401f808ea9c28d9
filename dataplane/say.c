/* say: timestamped log lines on stderr. See say.h. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "say.h"

enum say_level say_min_level = SAY_INFO;

static __thread int say_shard = -1;

void say_set_shard(int shard)
{
	say_shard = shard;
}

static const char *const say_level_names[] = { "debug", "info", "warn", "error" };

void say(enum say_level level, const char *fmt, ...)
{
	if (level < say_min_level)
		return;
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (say_shard >= 0)
		fprintf(stderr, "%s.%03ldZ %-5s [s%d] %s\n", stamp, ts.tv_nsec / 1000000,
			say_level_names[level], say_shard, line);
	else
		fprintf(stderr, "%s.%03ldZ %-5s %s\n", stamp, ts.tv_nsec / 1000000,
			say_level_names[level], line);
}

/*
 * say: the broker's log lines on stderr, one line per event, with a UTC
 * timestamp and a level. Callable from any thread (stdio locks the stream);
 * not for the per-request hot path.
 */
#ifndef SLUICE_SAY_H
#define SLUICE_SAY_H

enum say_level { SAY_DEBUG, SAY_INFO, SAY_WARN, SAY_ERROR };

extern enum say_level say_min_level;

/* Lines logged by this thread name its shard ("[s1]"); -1 (the default,
 * the main thread) names none. */
void say_set_shard(int shard);

void say(enum say_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define say_debug(...) say(SAY_DEBUG, __VA_ARGS__)
#define say_info(...)  say(SAY_INFO, __VA_ARGS__)
#define say_warn(...)  say(SAY_WARN, __VA_ARGS__)
#define say_error(...) say(SAY_ERROR, __VA_ARGS__)

#endif

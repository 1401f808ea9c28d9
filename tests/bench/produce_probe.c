/*
 * produce_probe: ack latency of one produce request at a time, with as
 * little client in the way as a client can have.
 *
 * raw_produce.py --probe builds the request (a whole frame: size, header,
 * ProduceRequest v3 with one prebuilt batch) and runs this with it. The
 * probe sends that same frame on an open-loop schedule of --rate per second
 * on one blocking socket, one request in flight, and times each from the
 * moment it was sent to the moment its whole response was read (the
 * broker's ack latency plus one loopback round trip). A send that falls
 * behind the schedule is counted from its scheduled time as well
 * (coordinated omission): both are reported. The wait between sends
 * sleeps to 100 us before the due time and spins the rest, so the
 * client's own timer slack is not in the figures.
 *
 * Usage: produce_probe FRAME_FILE HOST PORT RATE SECONDS ERROR_OFFSET
 * ERROR_OFFSET is where the partition's error code sits in the response
 * (after the size prefix); a non-zero code counts as an error. Prints one
 * JSON line: requests, errors, latency_us {p50,p90,p99,p99_9,max} from the
 * send, latency_sched_us the same from the schedule.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "probe_stats.h"

/* Responses to a one-batch produce are tens of bytes. */
#define PROBE_RESPONSE_MAX 4096
/* Sleep until this close to the due time, then spin. */
#define PROBE_SPIN_NS 100000

static int read_full(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: produce_probe FRAME_FILE HOST PORT RATE SECONDS ERROR_OFFSET\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (f == NULL) {
		perror(argv[1]);
		return 2;
	}
	static uint8_t frame[1 << 22];
	size_t flen = fread(frame, 1, sizeof(frame), f);
	fclose(f);
	double rate = atof(argv[4]), secs = atof(argv[5]);
	long err_off = atol(argv[6]);
	if (flen < 8 || rate <= 0 || secs <= 0 || err_off < 0 || err_off + 2 > PROBE_RESPONSE_MAX) {
		fprintf(stderr, "produce_probe: bad arguments\n");
		return 2;
	}

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3])) };
	if (fd < 0 || inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "produce_probe: connecting to %s:%s: %s\n", argv[2], argv[3],
			strerror(errno));
		return 1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	size_t cap = (size_t)(rate * secs) + 1;
	int64_t *lat = malloc(cap * sizeof(*lat)), *sched = malloc(cap * sizeof(*sched));
	if (lat == NULL || sched == NULL)
		return 2;
	int64_t period = (int64_t)(1e9 / rate), start = now_ns(), due = start;
	int64_t end = start + (int64_t)(secs * 1e9);
	size_t n = 0, errors = 0;
	uint8_t resp[PROBE_RESPONSE_MAX];
	while (due < end && n < cap) {
		int64_t t = now_ns();
		if (due - t > PROBE_SPIN_NS) {
			int64_t s = due - t - PROBE_SPIN_NS;
			struct timespec ts = { s / 1000000000, s % 1000000000 };
			nanosleep(&ts, NULL);
		}
		while ((t = now_ns()) < due)
			;
		if (write_full(fd, frame, flen) != 0 || read_full(fd, resp, 4) != 0) {
			fprintf(stderr, "produce_probe: connection lost\n");
			return 1;
		}
		uint32_t size = (uint32_t)resp[0] << 24 | (uint32_t)resp[1] << 16 |
				(uint32_t)resp[2] << 8 | resp[3];
		if (size > sizeof(resp) || read_full(fd, resp, size) != 0) {
			fprintf(stderr, "produce_probe: bad response\n");
			return 1;
		}
		int64_t done = now_ns();
		lat[n] = done - t;
		sched[n] = done - due;
		n++;
		if ((size_t)err_off + 2 > size || resp[err_off] != 0 || resp[err_off + 1] != 0)
			errors++;
		due += period;
	}
	printf("{\"requests\": %zu, \"errors\": %zu, ", n, errors);
	print_pcts("latency_us", lat, n);
	printf(", ");
	print_pcts("latency_sched_us", sched, n);
	printf("}\n");
	free(lat);
	free(sched);
	close(fd);
	return errors ? 1 : 0;
}

// The loop of ../main.go in C: one round trip to the echo server at
// 127.0.0.1:7999 every 1/RATE seconds, for SECONDS; the CPU from getrusage.
//
//	cc -O2 -o /tmp/floor-c floor.c && /tmp/floor-c RATE SECONDS
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s RATE SECONDS\n", argv[0]);
		return 2;
	}
	double rate = atof(argv[1]), dur = atof(argv[2]);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons(7999);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("connect");
		return 1;
	}
	char buf[200] = {0};
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	double start = now();
	for (long i = 0; now() - start < dur; i++) {
		double wait = start + i / rate - now();
		if (wait > 0) {
			struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
			nanosleep(&ts, NULL);
		}
		if (write(s, buf, 100) != 100 || read(s, buf, sizeof buf) <= 0) {
			perror("round trip");
			return 1;
		}
	}
	getrusage(RUSAGE_SELF, &r1);
	double el = now() - start;
	double cpu = seconds(r1.ru_utime) - seconds(r0.ru_utime) + seconds(r1.ru_stime) - seconds(r0.ru_stime);
	printf("c %g round trips/s: %.2f %% of a core, %.0f wake-ups/s\n", rate, cpu / el * 100,
	       (r1.ru_nvcsw + r1.ru_nivcsw - r0.ru_nvcsw - r0.ru_nivcsw) / el);
	return 0;
}

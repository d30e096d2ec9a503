/* The peers benchmark's sender (bench/peers.py builds it): UDP datagrams of one payload to one address, with
 * sendmmsg in batches, paced to a rate (0: as fast as it can), for a number of seconds. Prints
 * {"sent": N, "seconds": S} on stdout. It runs pinned to its own core, so it is not the bottleneck.
 *
 *   send ADDRESS PORT RATE SECONDS PAYLOAD_FILE
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s ADDRESS PORT RATE SECONDS PAYLOAD_FILE\n", argv[0]);
        return 2;
    }
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    static char payload[9000];
    FILE *f = fopen(argv[5], "rb");
    if (!f) { perror(argv[5]); return 2; }
    size_t len = fread(payload, 1, sizeof(payload), f);
    fclose(f);

    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof(to)) < 0) { perror("socket"); return 1; }
    int sndbuf = 4 << 20;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

    struct iovec iov = {.iov_base = payload, .iov_len = len};
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < BATCH; i++) { msgs[i].msg_hdr.msg_iov = &iov; msgs[i].msg_hdr.msg_iovlen = 1; }

    long long sent = 0;
    double start = now(), end = start + seconds, t;
    while ((t = now()) < end) {
        int n = BATCH;
        if (rate > 0) {
            long long due = (long long)((t - start) * rate) - sent;  /* what the rate allows by now */
            if (due <= 0) { usleep(50); continue; }
            if (due < n) n = (int)due;
        }
        int r = sendmmsg(s, msgs, n, 0);
        if (r > 0) sent += r;
    }
    printf("{\"sent\": %lld, \"seconds\": %.6f}\n", sent, now() - start);
    return 0;
}

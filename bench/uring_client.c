/* An HTTP/1.1 client whose socket I/O goes through io_uring (IORING_OP_SEND
 * and IORING_OP_RECV), with raw syscalls so no liburing is needed:
 *   gcc -O2 -o /tmp/uring_client bench/uring_client.c
 *   uring_client HOST PORT PATH COUNT
 * Sends COUNT keep-alive GETs on one connection (connect(2) is a plain
 * syscall), reads each response, exits 0 when all came back. What it is
 * for: docs/PERFORMANCE.md, "Where to capture" (io_uring). */
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int ring_fd;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static int run(__u8 op, int fd, void *buf, unsigned len)
{
	unsigned t = *sq_tail, i = t & *sq_mask;
	struct io_uring_sqe *sqe = &sqes[i];

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (unsigned long)buf;
	sqe->len = len;
	sq_array[i] = i;
	__atomic_store_n(sq_tail, t + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
		perror("io_uring_enter");
		exit(1);
	}
	unsigned h = __atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
	if (h == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) {
		fprintf(stderr, "no completion\n");
		exit(1);
	}
	int res = cqes[h & *cq_mask].res;
	__atomic_store_n(cq_head, h + 1, __ATOMIC_RELEASE);
	return res;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s HOST PORT PATH COUNT\n", argv[0]);
		return 2;
	}
	struct io_uring_params p = {0};
	ring_fd = syscall(__NR_io_uring_setup, 8, &p);
	if (ring_fd < 0) {
		perror("io_uring_setup");
		return 1;
	}
	size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(0, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
	char *cq = mmap(0, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_CQ_RING);
	sqes = mmap(0, p.sq_entries * sizeof(*sqes), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	sq_array = (unsigned *)(sq + p.sq_off.array);
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cq_tail = (unsigned *)(cq + p.cq_off.tail);
	cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
	inet_pton(AF_INET, argv[1], &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		return 1;
	}
	char req[512], resp[65536];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: uring-client\r\n\r\n", argv[3], argv[1], argv[2]);
	for (int i = 0, count = atoi(argv[4]); i < count; i++) {
		if (run(IORING_OP_SEND, fd, req, n) != n) {
			fprintf(stderr, "short send\n");
			return 1;
		}
		int got = run(IORING_OP_RECV, fd, resp, sizeof(resp));
		if (got <= 0 || strncmp(resp, "HTTP/1.1 ", 9)) {
			fprintf(stderr, "bad response (%d)\n", got);
			return 1;
		}
	}
	printf("ok\n");
	return 0;
}

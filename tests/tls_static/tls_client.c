/*
 * tls_client.c — a small HTTPS keep-alive client for hdrtap's integration
 * tests, linked STATICALLY against OpenSSL (libssl.a, libcrypto.a from
 * libssl-dev; libc stays dynamic): the SSL_* symbols live in this program's
 * own symbol table, so hdrtap must hook the program itself, not libssl.so.
 *
 * Build (tests/src/tls.rs does this):
 *   cc -O1 -o tlsstatic tls_client.c -l:libssl.a -l:libcrypto.a -lpthread -ldl
 *
 * Usage: tlsstatic HOST PORT COUNT TEST_ID [--wait before-connect|after-handshake]
 *
 * Speaks the line protocol of tests/clients/rawhttp.py on stdout (hello,
 * connected, sent, response, waiting, done), reporting exactly the bytes it
 * passed to SSL_write and got from SSL_read. With --wait it prints
 * {"event":"waiting"} and blocks until a line arrives on stdin: before
 * connecting, or after the TLS handshake (holding the TCP socket).
 * Requests: GET /?seq=N (odd N) and /status/404?seq=N (even N), each with
 * X-Test-Id and X-Seq; responses must carry Content-Length.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "tlsstatic: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void json_str(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c); /* latin-1, as rawhttp.py decodes */
		else
			putchar(c);
	}
	putchar('"');
}

/* Print the header lines of block [p, end) (after the first line) as JSON pairs. */
static void json_headers(const char *p, const char *end)
{
	int first = 1;

	printf("[");
	while (p < end) {
		const char *eol = strstr(p, "\r\n");
		const char *colon, *v, *ve;

		if (!eol || eol > end)
			eol = end;
		if (eol == p)
			break;
		colon = memchr(p, ':', eol - p);
		if (!colon)
			colon = eol;
		v = colon < eol ? colon + 1 : eol;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		ve = eol;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		printf("%s[", first ? "" : ",");
		json_str(p, colon - p);
		printf(",");
		json_str(v, ve - v);
		printf("]");
		first = 0;
		p = eol + 2;
	}
	printf("]");
}

static void endpoint(const struct sockaddr_storage *ss)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		port = ntohs(a->sin_port);
	} else {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
	}
	printf("{\"ip\":\"%s\",\"port\":%d}", ip, port);
}

static void wait_go(void)
{
	char line[64];

	printf("{\"event\":\"waiting\"}\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		die("stdin closed before the go line");
}

int main(int argc, char **argv)
{
	const char *host, *id, *wait = "none";
	int port, count, fd, v6;
	struct sockaddr_storage ss = {0}, me = {0}, peer = {0};
	socklen_t len;
	char comm[32] = "";
	FILE *f;
	SSL_CTX *ctx;
	SSL *ssl;
	static char buf[1 << 16];

	if (argc < 5)
		die("usage: tlsstatic HOST PORT COUNT TEST_ID [--wait before-connect|after-handshake]");
	host = argv[1];
	port = atoi(argv[2]);
	count = atoi(argv[3]);
	id = argv[4];
	if (argc >= 7 && strcmp(argv[5], "--wait") == 0)
		wait = argv[6];
	f = fopen("/proc/self/comm", "r");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
	printf("{\"event\":\"hello\",\"pid\":%d,\"tid\":%ld,\"comm\":\"%s\"}\n", getpid(),
	       (long)syscall(SYS_gettid), comm);
	fflush(stdout);
	if (strcmp(wait, "before-connect") == 0)
		wait_go();

	v6 = strchr(host, ':') != NULL;
	if (v6) {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			die("bad IPv6 address");
	} else {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			die("bad IPv4 address");
	}
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (void *)&ss, v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)))
		die("connect failed");
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
		die("TLS handshake failed");
	len = sizeof(me);
	getsockname(fd, (void *)&me, &len);
	len = sizeof(peer);
	getpeername(fd, (void *)&peer, &len);
	printf("{\"event\":\"connected\",\"local\":");
	endpoint(&me);
	printf(",\"remote\":");
	endpoint(&peer);
	printf("}\n");
	fflush(stdout);
	if (strcmp(wait, "after-handshake") == 0)
		wait_go();

	for (int seq = 1; seq <= count; seq++) {
		char req[1024], target[64];
		int n, have = 0, head_len, clen = -1, status = 0;
		char *end, *p;

		snprintf(target, sizeof(target), "%s?seq=%d", seq % 2 ? "/" : "/status/404", seq);
		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: hdrtap-tls-static/1.0\r\n"
			     "Accept: */*\r\nX-Test-Id: %s\r\nX-Seq: %d\r\n\r\n",
			     target, v6 ? "[" : "", host, v6 ? "]" : "", port, id, seq);
		if (SSL_write(ssl, req, n) != n)
			die("SSL_write");
		printf("{\"event\":\"sent\",\"seq\":%d,\"method\":\"GET\",\"target\":\"%s\","
		       "\"version\":\"HTTP/1.1\",\"headers\":",
		       seq, target);
		json_headers(strstr(req, "\r\n") + 2, req + n);
		printf(",\"header_bytes\":%d,\"body_bytes\":0}\n", n);
		fflush(stdout);

		/* Read the header block, then Content-Length bytes of body. */
		for (;;) {
			buf[have] = 0;
			end = strstr(buf, "\r\n\r\n");
			if (end)
				break;
			if (have >= (int)sizeof(buf) - 1)
				die("response header block too long");
			n = SSL_read(ssl, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0)
				die("SSL_read");
			have += n;
		}
		head_len = end + 4 - buf;
		for (p = buf; p < end; p = strstr(p, "\r\n") + 2) {
			if (strncasecmp(p, "Content-Length:", 15) == 0)
				clen = atoi(p + 15);
			if (p == buf)
				status = atoi(p + 9);
		}
		if (clen < 0)
			die("response without Content-Length");
		while (have - head_len < clen) {
			n = SSL_read(ssl, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0)
				die("SSL_read body");
			have += n;
		}
		{
			char *sp = strchr(buf, ' ');
			char *reason = sp ? strchr(sp + 1, ' ') : NULL;
			char *eol = strstr(buf, "\r\n");

			printf("{\"event\":\"response\",\"seq\":%d,\"version\":", seq);
			json_str(buf, sp ? (size_t)(sp - buf) : 0);
			printf(",\"status\":%d,\"reason\":", status);
			if (reason && reason < eol)
				json_str(reason + 1, eol - reason - 1);
			else
				json_str("", 0);
			printf(",\"headers\":");
			json_headers(eol + 2, end + 2);
			printf(",\"header_bytes\":%d,\"body_bytes\":%d}\n", head_len, clen);
			fflush(stdout);
		}
		if (have - head_len > clen)
			die("more bytes than the response (pipelining is not expected)");
		have = 0;
	}
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	printf("{\"event\":\"done\"}\n");
	return 0;
}

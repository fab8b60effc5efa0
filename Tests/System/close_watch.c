/* close_watch: an LD_PRELOAD shim for the test run that reports every close(2) of a
 * descriptor that is not open (EBADF) in Celeris's own processes (the test process and
 * the celeris-* executables it starts).
 *
 * A descriptor closed twice is a latent bug even when the second close finds nothing:
 * between the two, another thread may have been given the same number (a socket, a
 * pipe), and the late close then takes it away from it. That is how one test's
 * double close once ended another test's HTTP connection under it.
 *
 * Each report is one line plus the return addresses (for addr2line), appended to the
 * file named by $CELERIS_CLOSE_WATCH. `make test` fails when the file is not empty.
 *
 *     cc -shared -fPIC -o close_watch.so close_watch.c -ldl
 *     CELERIS_CLOSE_WATCH=/tmp/closes LD_PRELOAD=$PWD/close_watch.so swift test …
 *
 * Built with -DCLOSE_WATCH_CHECK it is instead the self-check `make test` runs first under the
 * shim (named celeris-close-watch-check): one descriptor closed twice, which must be reported.
 */
#define _GNU_SOURCE
#ifdef CLOSE_WATCH_CHECK
#include <fcntl.h>
#include <unistd.h>

int main(void) {
    int fd = open("/dev/null", O_RDONLY);
    close(fd);
    close(fd);
    return 0;
}
#else
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char *program_invocation_short_name;

static int (*real_close)(int);

/* 1 in the processes watched: names starting with "celeris" (any case). */
static int watched(void) {
    const char *name = program_invocation_short_name;
    return name && strncasecmp(name, "celeris", 7) == 0;
}

/* Append one report (the line, then the stack) to the watch file. */
static void report(int fd) {
    const char *path = getenv("CELERIS_CLOSE_WATCH");
    if (!path || !*path) return;
    int out = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0) return;
    char line[200];
    int n = snprintf(line, sizeof(line), "close(%d): not open, in %s (pid %d)\n", fd,
                     program_invocation_short_name, (int)getpid());
    if (n > 0) (void)!write(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    void *stack[32];
    backtrace_symbols_fd(stack, backtrace(stack, 32), out);
    real_close(out);
}

int close(int fd) {
    if (!real_close) real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    int rc = real_close(fd);
    if (rc < 0 && errno == EBADF && fd >= 0 && watched()) {
        int saved = errno;
        report(fd);
        errno = saved;
    }
    return rc;
}
#endif

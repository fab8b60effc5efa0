/* close_watch: an LD_PRELOAD shim for the test run that reports every close(2) of a
 * descriptor that is not open (EBADF) in Celeris's own processes (the test process and
 * the celeris-* executables it starts).
 *
 * A descriptor closed twice is a latent bug even when the second close finds nothing:
 * between the two, another thread may have been given the same number (a socket, a
 * pipe), and the late close then takes it away from it. That is how one test's
 * double close once ended another test's HTTP connection under it.
 *
 * Each report is one line plus the stack as object(+offset) (for addr2line), appended to
 * the file named by $CELERIS_CLOSE_WATCH (read at load). `make test` fails when the file
 * is not empty. It sees a second close only while the number is still free: one that hits
 * a reused number succeeds, unseen, which is why any EBADF at all fails the run.
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
static char watch_path[1024]; /* empty: report nothing */

/* At load, before any thread: the real close, the report file, and backtrace's own library
 * (its first call loads libgcc_s), so a report later allocates and loads nothing. */
__attribute__((constructor)) static void close_watch_init(void) {
    real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    const char *path = getenv("CELERIS_CLOSE_WATCH");
    if (path) snprintf(watch_path, sizeof(watch_path), "%s", path);
    void *warm[1];
    (void)backtrace(warm, 1);
}

/* 1 in the processes watched: names starting with "celeris" (any case). */
static int watched(void) {
    const char *name = program_invocation_short_name;
    return watch_path[0] && name && strncasecmp(name, "celeris", 7) == 0;
}

/* Append one report to the watch file in a single write (reports from several threads do
 * not interleave): the line, then each frame as `object(+offset)` for addr2line. */
static void report(int fd) {
    char text[4096];
    size_t len = 0;
    int n = snprintf(text, sizeof(text), "close(%d): not open, in %s (pid %d)\n", fd,
                     program_invocation_short_name, (int)getpid());
    if (n > 0) len = (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
    void *stack[32];
    int frames = backtrace(stack, 32);
    for (int i = 1; i < frames && len < sizeof(text) - 1; i++) { /* frame 0 is report() */
        Dl_info info;
        if (dladdr(stack[i], &info) && info.dli_fname)
            n = snprintf(text + len, sizeof(text) - len, "  %s(+0x%lx)\n", info.dli_fname,
                         (unsigned long)((char *)stack[i] - (char *)info.dli_fbase));
        else
            n = snprintf(text + len, sizeof(text) - len, "  %p\n", stack[i]);
        if (n < 0) break;
        len += (size_t)n < sizeof(text) - len ? (size_t)n : sizeof(text) - 1 - len;
    }
    int out = open(watch_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0) return;
    (void)!write(out, text, len);
    real_close(out);
}

int close(int fd) {
    if (!real_close) real_close = (int (*)(int))dlsym(RTLD_NEXT, "close"); /* before our constructor */
    int rc = real_close(fd);
    if (rc < 0 && errno == EBADF && fd >= 0 && watched()) {
        int saved = errno;
        report(fd);
        errno = saved;
    }
    return rc;
}
#endif

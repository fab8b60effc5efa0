/* malloc_count.c: an LD_PRELOAD shim that counts heap allocations (malloc,
 * calloc, realloc, aligned variants) and writes the total to the file named by
 * MALLOC_COUNT_OUT at exit. Mechanism only; perf/allocs_per_task.py reads it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_long allocations;

/* glibc's own entry points, found once. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

/* Count one allocation and pass it on. */
void *malloc(size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

/* Count one allocation and pass it on. */
void *calloc(size_t k, size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_calloc(k, n);
}

/* Count a realloc that allocates (growth or a fresh block) and pass it on. */
void *realloc(void *p, size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

/* Count one aligned allocation and pass it on. */
int posix_memalign(void **out, size_t align, size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    void *p = __libc_memalign(align, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

/* Count one aligned allocation and pass it on. */
void *aligned_alloc(size_t align, size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_memalign(align, n);
}

/* Write the total where MALLOC_COUNT_OUT says. */
__attribute__((destructor)) static void report(void) {
    const char *path = getenv("MALLOC_COUNT_OUT");
    if (!path) return;
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "%ld\n", atomic_load(&allocations));
    fclose(f);
}

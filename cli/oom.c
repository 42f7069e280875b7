/*
 * oom.c — out of memory, said plainly. The CLI's libraries do not all cope
 * with an allocation that fails: json-c 0.16 reports a parse that ran out of
 * memory as a failure whose reason is "success", and aborts on an assertion
 * when it adds to an object it could not make. So, as git's xmalloc does,
 * every allocation of the CLI and its libraries goes through the three
 * functions below (an executable's definitions come first in symbol
 * lookup, and glibc itself calls malloc through its PLT), and one that
 * fails ends the command: "leakwatch: out of memory", exit 2. The memory
 * still comes from glibc's allocator (its __libc_ entry points), so its
 * free, and everything else of malloc's, stay as they are.
 *
 * Not under AddressSanitizer, whose own malloc must see every allocation.
 */
#if !defined(__SANITIZE_ADDRESS__)
#include <stddef.h>
#include <unistd.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);

void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);

static void out_of_memory(void)
{
    static const char message[] = "leakwatch: out of memory\n";
    (void)!write(STDERR_FILENO, message, sizeof message - 1);
    _exit(2);
}

void *malloc(size_t size)
{
    void *p = __libc_malloc(size);
    if (!p && size)
        out_of_memory();
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    if (!p && n && size)
        out_of_memory();
    return p;
}

void *realloc(void *p, size_t size)
{
    void *q = __libc_realloc(p, size);
    if (!q && size)
        out_of_memory();
    return q;
}
#endif

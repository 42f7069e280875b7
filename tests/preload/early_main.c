/* early_main.c — reports what early_lib.c's constructor saw, and whether
 * libleakwatch.so is loaded (test_early.py: it must be when preloaded). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <link.h>
#include <stdio.h>
#include <string.h>

extern int early_result;

static int is_leakwatch(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    return info->dlpi_name && strstr(info->dlpi_name, "libleakwatch.so") != NULL;
}

int main(void)
{
    printf("early constructor result: %d\n", early_result);
    printf("leakwatch loaded: %s\n", dl_iterate_phdr(is_leakwatch, NULL) ? "yes" : "no");
    return early_result == 1 ? 0 : 1;
}

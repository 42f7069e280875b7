/* early_main.c — reports what early_lib.c's constructor saw. */
#include <stdio.h>

extern int early_result;

int main(void)
{
    printf("early constructor result: %d\n", early_result);
    return early_result == 1 ? 0 : 1;
}

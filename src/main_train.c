/* train: placeholder until the programs issue lands. */
#include "utils.h"
#include <stdio.h>

int main(int argc, char **argv)
{
    util_set_progname(argv[0]);
    (void)argc;
    fprintf(stderr, "usage: train ... (not implemented yet)\n");
    return 2;
}

/* The same n calls without the header (the baseline of the overhead figure). */
#include "ntddk.h"

VOID DrvBenchDirect(PMDL mdl, long n)
{
    long i;
    for (i = 0; i < n; i++) {
        MmUnlockPages(mdl);
    }
}

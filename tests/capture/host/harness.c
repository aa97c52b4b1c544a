#define _POSIX_C_SOURCE 200809L
/* Host end-to-end test: plays the seed scenario through the instrumented driver.c.
 *   harness scenario OUT.txt   -> the events (E/K lines, see doubles.c)
 *   harness routines OUT.txt   -> every wrapper once
 *   harness raise OUT.txt      -> a probe that raises (the driver's handler prints the code)
 *   harness bench N            -> ns per call, direct and through the wrapper (events
 *                                 formatted by the stand-in but not written) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ntddk.h"
#include "fake_kernel.h"

NTSTATUS DrvEntry(void);
PVOID DrvIoctlMapIntoApp(PVOID kernel_buffer, ULONG length);
VOID DrvWorkerTeardown(void);
VOID DrvEveryRoutine(PKPROCESS app, PIRP irp);
NTSTATUS DrvProbeUserBuffer(PVOID user_buffer, ULONG length);
VOID DrvBenchWrapped(PMDL mdl, long n);
VOID DrvBenchDirect(PMDL mdl, long n);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void boot(PKPROCESS* system, PKPROCESS* app)
{
    *system = fk_process(4);
    *app = fk_process(1234);
    fk_at(0);
    fk_kernel("ProcessRundown pid=4 parent_pid=0 image=System");
    fk_kernel("ThreadRundown pid=4 tid=88");
    fk_kernel("ImageLoad pid=0 image=\\SystemRoot\\System32\\drivers\\mydriver.sys base=0x%llx image_size=0x%llx",
              FK_KERNEL_BASE, FK_IMAGE_SIZE);
    fk_kernel("ProcessStart pid=1234 parent_pid=500 image=app.exe");
    fk_kernel("ThreadStart pid=1234 tid=5678");
    fk_run(0, *system, 88);
    DrvEntry();
}

int main(int argc, char** argv)
{
    PKPROCESS system, app;
    if (argc == 3 && strcmp(argv[1], "scenario") == 0) {
        fk_open(argv[2], 0);
        boot(&system, &app);
        fk_at(1000000);
        fk_run(1, app, 5678);                         /* app.exe's IOCTL */
        DrvIoctlMapIntoApp((PVOID)(ULONG_PTR)0xFFFFB00012340000ULL, 8192);
        fk_at(5000000);
        fk_run(0, system, 88);                        /* a System work item */
        DrvWorkerTeardown();
        fk_at(9000000);
        fk_kernel("ThreadEnd pid=1234 tid=5678");
        fk_kernel("ProcessEnd pid=1234 parent_pid=500 image=app.exe");   /* app exits, no unmap */
        fk_close();
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "routines") == 0) {
        fk_open(argv[2], 0);
        boot(&system, &app);
        fk_at(1000000);
        fk_run(0, system, 88);
        fk_irql(1);
        DrvEveryRoutine(app, (PIRP)calloc(1, 64));
        fk_close();
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "raise") == 0) {
        NTSTATUS bad, good;
        fk_open(argv[2], 0);
        boot(&system, &app);
        fk_at(1000000);
        fk_run(1, app, 5678);
        bad = DrvProbeUserBuffer((PVOID)(ULONG_PTR)FK_BAD_USER_VA, 4096);
        good = DrvProbeUserBuffer((PVOID)(ULONG_PTR)0x000001D2C3A50000ULL, 4096);
        fk_close();
        printf("bad=0x%lx good=0x%lx\n", (unsigned long)bad, (unsigned long)good);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "bench") == 0) {
        long n = atol(argv[2]);
        MDL mdl;
        double t0, direct = 1e9, wrapped = 1e9;
        int round;
        memset(&mdl, 0, sizeof mdl);
        fk_open(NULL, 1);
        boot(&system, &app);
        fk_run(0, system, 88);
        for (round = 0; round < 5; round++) {                 /* best of 5 */
            double d, w;
            t0 = now_s(); DrvBenchDirect(&mdl, n); d = now_s() - t0;
            t0 = now_s(); DrvBenchWrapped(&mdl, n); w = now_s() - t0;
            if (d < direct) direct = d;
            if (w < wrapped) wrapped = w;
        }
        printf("calls=%ld direct_ns=%.1f wrapped_ns=%.1f overhead_ns=%.1f events=%llu\n", n, direct / n * 1e9,
               wrapped / n * 1e9, (wrapped - direct) / n * 1e9, fk_events);
        return 0;
    }
    fprintf(stderr, "usage: harness scenario|routines|raise OUT.txt | harness bench N\n");
    return 2;
}

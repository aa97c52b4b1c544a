/* A small "driver" instrumented with capture/mdltrace.h: its MDL calls are the plain
 * routine names, redirected to the wrappers by the header. Each call site carries a
 * SITE marker; the test checks that the analyzer's caller offsets point at these lines. */
#include "ntddk.h"
#define MDLTRACE_DEFINE_PROVIDER
#include "mdltrace.h"

static PMDL shared_mdl;

NTSTATUS DrvEntry(void)
{
    return MdlTraceRegister();
}

/* IOCTL in the app's context: describe a kernel buffer, lock it, map it into the app. */
PVOID DrvIoctlMapIntoApp(PVOID kernel_buffer, ULONG length)
{
    PVOID user_va;
    shared_mdl = IoAllocateMdl(kernel_buffer, length, FALSE, FALSE, NULL); /* SITE:alloc */
    if (shared_mdl == NULL) {
        return NULL;
    }
    MmProbeAndLockPages(shared_mdl, KernelMode, IoWriteAccess); /* SITE:lock */
    user_va = MmMapLockedPagesSpecifyCache(shared_mdl, UserMode, MmCached, NULL, FALSE, NormalPagePriority); /* SITE:map */
    return user_va;
}

/* A System worker tears the buffer down while the app's mapping is live (the bug). */
VOID DrvWorkerTeardown(void)
{
    MmUnlockPages(shared_mdl); /* SITE:unlock */
    IoFreeMdl(shared_mdl); /* SITE:free */
    shared_mdl = NULL;
}

/* METHOD_NEITHER-style probe of a user buffer under the driver's own __try (emulated on
 * the host): the wrapper logs the exception and lets it reach this handler. */
NTSTATUS DrvProbeUserBuffer(PVOID user_buffer, ULONG length)
{
    volatile NTSTATUS status = STATUS_SUCCESS;
    PMDL mdl = IoAllocateMdl(user_buffer, length, FALSE, FALSE, NULL);
    MDLTRACE_TRY {
        MmProbeAndLockPages(mdl, UserMode, IoWriteAccess); /* SITE:probe */
    } MDLTRACE_EXCEPT(EXCEPTION_EXECUTE_HANDLER) {
        status = (NTSTATUS)MDLTRACE_EXCEPTION_CODE();
    }
    if (status == STATUS_SUCCESS) {
        MmUnlockPages(mdl);
    }
    IoFreeMdl(mdl);
    return status;
}

/* Every wrapper once (the test compares each event's fields with the schema). */
VOID DrvEveryRoutine(PKPROCESS app, PIRP irp)
{
    PHYSICAL_ADDRESS low, high, skip;
    KAPC_STATE apc;
    FILE_SEGMENT_ELEMENT segments[1];
    PMDL source, partial, pages, pool;
    PVOID reservation, va;
    low.QuadPart = 0; high.QuadPart = -1; skip.QuadPart = 0;
    source = IoAllocateMdl((PVOID)(ULONG_PTR)0x7FF612340000ULL, 8192, FALSE, FALSE, irp);
    partial = IoAllocateMdl(NULL, 4096, FALSE, FALSE, NULL);
    MmProbeAndLockProcessPages(source, app, UserMode, IoReadAccess);
    MmProbeAndLockSelectedPages(partial, segments, UserMode, IoModifyAccess);
    IoBuildPartialMdl(source, partial, MmGetMdlVirtualAddress(source), 4096);
    va = MmMapLockedPages(partial, KernelMode);
    MmUnmapLockedPages(va, partial);
    va = MmGetSystemAddressForMdlSafe(source, NormalPagePriority | MdlMappingNoExecute);
    va = MmGetSystemAddressForMdlSafe(source, NormalPagePriority | MdlMappingNoExecute); /* mapped: no call */
    pool = IoAllocateMdl((PVOID)(ULONG_PTR)0xFFFFC30A4C010000ULL, 4096, FALSE, FALSE, NULL);
    MmBuildMdlForNonPagedPool(pool);
    pages = MmAllocatePagesForMdlEx(low, high, skip, 65536, MmCached, 0);
    MdlTraceExFreePoolMdl(MmAllocatePagesForMdl(low, high, skip, 4096));
    reservation = MmAllocateMappingAddress(65536, 0x526c644d);
    va = MmMapLockedPagesWithReservedMapping(reservation, 0x526c644d, pages, MmCached);
    MmUnmapReservedMapping(reservation, 0x526c644d, pages);
    MmFreeMappingAddress(reservation, 0x526c644d);
    MmFreeMappingAddress(MmAllocateMappingAddressEx(4096, 0x526c644d, 0), 0x526c644d);
    MmFreePagesFromMdl(pages);
    IoFreeMdl(pages);
    KeStackAttachProcess(app, &apc);
    KeUnstackDetachProcess(&apc);
    MmUnlockPages(source);
    IoFreeMdl(partial);
    IoFreeMdl(pool);
    IoCompleteRequest(irp, 0);
    (void)va;
}

/* The benchmark: n unlock calls through the wrapper. */
VOID DrvBenchWrapped(PMDL mdl, long n)
{
    long i;
    for (i = 0; i < n; i++) {
        MmUnlockPages(mdl);
    }
}

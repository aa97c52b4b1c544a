/* Compiled (not linked) as x64 kernel-mode C against MinGW-w64's DDK headers: every
 * wrapper of capture/mdltrace.h checked against the real prototypes, and the SEH
 * filters compiled by clang. A driver function uses the redirected names. */
#include <ntifs.h>
#include <ntddk.h>
#define MDLTRACE_DEFINE_PROVIDER
#include "mdltrace.h"

NTSTATUS DriverMapForUser(PVOID buffer, ULONG length, PVOID* user_va)
{
    PMDL mdl = IoAllocateMdl(buffer, length, FALSE, FALSE, NULL);
    PVOID system_va;
    if (mdl == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    __try {
        MmProbeAndLockPages(mdl, KernelMode, IoWriteAccess);
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        IoFreeMdl(mdl);
        return GetExceptionCode();
    }
    system_va = MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute);
    __try {
        *user_va = MmMapLockedPagesSpecifyCache(mdl, UserMode, MmCached, NULL, FALSE, NormalPagePriority);
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        *user_va = NULL;
    }
    if (*user_va != NULL) {
        MmUnmapLockedPages(*user_va, mdl);
    }
    (void)system_va;
    MmUnlockPages(mdl);
    IoFreeMdl(mdl);
    return STATUS_SUCCESS;
}

VOID DriverEveryOtherCall(PEPROCESS process, PIRP irp, PFILE_SEGMENT_ELEMENT segments)
{
    PHYSICAL_ADDRESS low, high, skip;
    KAPC_STATE apc;
    PMDL source, partial, pages, pool;
    PVOID reservation, mapped;
    low.QuadPart = 0; high.QuadPart = -1; skip.QuadPart = 0;
    source = IoAllocateMdl(NULL, 8192, FALSE, FALSE, irp);
    partial = IoAllocateMdl(NULL, 4096, FALSE, FALSE, NULL);
    MmProbeAndLockProcessPages(source, process, UserMode, IoReadAccess);
    MmProbeAndLockSelectedPages(partial, segments, UserMode, IoModifyAccess);
    IoBuildPartialMdl(source, partial, MmGetMdlVirtualAddress(source), 4096);
    mapped = MmMapLockedPages(partial, KernelMode);
    MmUnmapLockedPages(mapped, partial);
    pool = IoAllocateMdl(ExAllocatePoolWithTag(NonPagedPool, 4096, 'MdlT'), 4096, FALSE, FALSE, NULL);
    MmBuildMdlForNonPagedPool(pool);
    pages = MmAllocatePagesForMdlEx(low, high, skip, 65536, MmCached, 0);
    MdlTraceExFreePoolMdl(MmAllocatePagesForMdl(low, high, skip, 4096));
    reservation = MmAllocateMappingAddress(65536, 'MdlR');
    mapped = MmMapLockedPagesWithReservedMapping(reservation, 'MdlR', pages, MmCached);
    MmUnmapReservedMapping(reservation, 'MdlR', pages);
    MmFreeMappingAddress(reservation, 'MdlR');
    MmFreeMappingAddress(MmAllocateMappingAddressEx(4096, 'MdlR', 0), 'MdlR');
    MmFreePagesFromMdl(pages);
    KeStackAttachProcess((PKPROCESS)process, &apc);
    KeUnstackDetachProcess(&apc);
    MmUnlockPages(source);
    IoCompleteRequest(irp, IO_NO_INCREMENT);
    (void)mapped;
}

NTSTATUS DriverEntryLike(void)
{
    return MdlTraceRegister();
}

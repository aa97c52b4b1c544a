/*
 * mdltrace.h - MDL call instrumentation for traceanalyzer (kernel mode, C, WDK).
 *
 * Opt-in: with MDLTRACE_ENABLED defined, every MDL routine named below is redirected to
 * a wrapper that calls the real routine and then logs one TraceLogging event of the
 * provider "MdlTrace" (schema: traceanalyzer/model/mdltrace_schema.json, documented in
 * docs/capture.md). Without MDLTRACE_ENABLED the header only maps the explicit MdlTrace*
 * names back to the real routines: nothing is logged, nothing is added to the driver.
 *
 *     #include <ntddk.h>            // or ntifs.h (needed for the KeStackAttachProcess wrappers)
 *     #define MDLTRACE_ENABLED       // the one switch (or -DMDLTRACE_ENABLED in the build)
 *     #define MDLTRACE_DEFINE_PROVIDER   // in exactly one .c file of the driver
 *     #include "mdltrace.h"
 *
 *     DriverEntry: MdlTraceRegister();      DriverUnload: MdlTraceUnregister();
 *
 * Every event carries the routine's arguments and result (status, mapped address), then
 * irql (KeGetCurrentIrql), effective_pid (PsGetProcessId(PsGetCurrentProcess()): the
 * address space the call used, the attached process under KeStackAttachProcess; note
 * PsGetCurrentProcessId() would give the thread's own process instead) and
 * return_address (_ReturnAddress() in a never-inlined wrapper: the driver's call site,
 * resolved to module+offset by traceanalyzer through the trace's ImageLoad events).
 * Only fixed-size fields: pointers, integers, enums as UINT8.
 *
 * Exceptions: MmProbeAndLockPages / ProcessPages / SelectedPages, and user-mode
 * MmMapLockedPagesSpecifyCache / MmMapLockedPages, raise on failure. The wrapper logs the
 * call with status = the exception code from an SEH filter that returns
 * EXCEPTION_CONTINUE_SEARCH: the exception reaches the driver's own __try unchanged.
 *
 * ExFreePool frees any pool block: it is not redirected. Call MdlTraceExFreePoolMdl(Mdl)
 * where the driver frees an MDL of MmAllocatePagesForMdl(Ex) with ExFreePool.
 */
#ifndef MDLTRACE_H
#define MDLTRACE_H

/* ---- names older DDK headers lack -------------------------------------------------- */
#ifndef MdlMappingNoExecute
#define MdlMappingNoExecute 0x40000000
#endif
#ifndef EXCEPTION_CONTINUE_SEARCH
#define EXCEPTION_CONTINUE_SEARCH 0
#endif
#ifndef MDLTRACE_HAVE_SELECTED_PAGES
/* MmProbeAndLockSelectedPages (wdm.h, Windows XP+) is missing from some DDK headers */
NTKERNELAPI VOID NTAPI MmProbeAndLockSelectedPages(PMDL MemoryDescriptorList,
    PFILE_SEGMENT_ELEMENT SegmentArray, KPROCESSOR_MODE AccessMode, LOCK_OPERATION Operation);
#endif
#ifndef MDLTRACE_HAVE_MAPPING_ADDRESS_EX
/* MmAllocateMappingAddressEx (wdm.h, Windows 10 1703+) */
NTKERNELAPI PVOID NTAPI MmAllocateMappingAddressEx(SIZE_T NumberOfBytes, ULONG PoolTag, ULONG Flags);
#endif

#ifdef MDLTRACE_ENABLED

#include <TraceLoggingProvider.h>

/* ---- compiler portability ------------------------------------------------------------ */
#if defined(_MSC_VER) || defined(__clang__) && defined(_WIN32)
#define MDLTRACEP_NOINLINE __declspec(noinline)
#else
#define MDLTRACEP_NOINLINE __attribute__((noinline))
#endif
#if defined(_MSC_VER)
#include <intrin.h>
#pragma intrinsic(_ReturnAddress)
#endif
#if defined(_MSC_VER) || defined(_WIN32)
#define MDLTRACEP_RETURN_ADDRESS() ((const void*)_ReturnAddress())
#else
#define MDLTRACEP_RETURN_ADDRESS() ((const void*)__builtin_return_address(0))
#endif
/* Structured exception handling. A build without it defines MDLTRACE_NO_SEH (the
 * filters are never run) or brings its own MDLTRACE_TRY / MDLTRACE_EXCEPT(filter) /
 * MDLTRACE_EXCEPTION_CODE() (the host test's setjmp emulation). */
#if defined(MDLTRACE_TRY)
#define MDLTRACEP_TRY MDLTRACE_TRY
#define MDLTRACEP_EXCEPT(filter) MDLTRACE_EXCEPT(filter)
#define MDLTRACEP_EXCEPTION_CODE() ((UINT32)MDLTRACE_EXCEPTION_CODE())
#elif !defined(MDLTRACE_NO_SEH)
#define MDLTRACEP_TRY __try
#define MDLTRACEP_EXCEPT(filter) __except (filter)
#define MDLTRACEP_EXCEPTION_CODE() ((UINT32)GetExceptionCode())
#else
#define MDLTRACEP_TRY if (1)
#define MDLTRACEP_EXCEPT(filter) else if (filter)
#define MDLTRACEP_EXCEPTION_CODE() ((UINT32)0)
#endif

TRACELOGGING_DECLARE_PROVIDER(MdlTraceProvider);

static __inline UINT8 MdlTracepIrql(void)
{
    return (UINT8)KeGetCurrentIrql();
}

static __inline UINT32 MdlTracepEffectivePid(void)
{
    return (UINT32)(ULONG_PTR)PsGetProcessId(PsGetCurrentProcess());
}

/* ---- BEGIN GENERATED from traceanalyzer/model/mdltrace_schema.json (capture/generate_header.py) ---- */
#define MDLTRACE_PROVIDER_NAME "MdlTrace"
/* 187eb5e9-857d-525c-36cb-625f55a6cdee: the TraceLogging name hash of "MdlTrace" */
#define MDLTRACE_PROVIDER_GUID (0x187eb5e9, 0x857d, 0x525c, 0x36, 0xcb, 0x62, 0x5f, 0x55, 0xa6, 0xcd, 0xee)
#define MDLTRACE_LEVEL 4
#define MDLTRACE_KEYWORD_CALLS 0x1

/* access_mode (UINT8): KernelMode = 0, UserMode = 1 */
/* operation (UINT8): IoReadAccess = 0, IoWriteAccess = 1, IoModifyAccess = 2 */
/* cache_type (UINT8): MmNonCached = 0, MmCached = 1, MmWriteCombined = 2, MmHardwareCoherentCached = 3, MmNonCachedUnordered = 4, MmUSWCCached = 5 */

/* IoAllocateMdl: logged by IoAllocateMdl */
static __inline void MdlTracepLog_IoAllocateMdl(const void* mdl, const void* va, UINT64 size, const void* irp, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "IoAllocateMdl",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingPointer(va, "va"),
        TraceLoggingUInt64(size, "size"),
        TraceLoggingPointer(irp, "irp"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* IoBuildPartialMdl: logged by IoBuildPartialMdl */
static __inline void MdlTracepLog_IoBuildPartialMdl(const void* source_mdl, const void* mdl, const void* va, UINT64 size, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "IoBuildPartialMdl",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(source_mdl, "source_mdl"),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingPointer(va, "va"),
        TraceLoggingUInt64(size, "size"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmBuildMdlForNonPagedPool: logged by MmBuildMdlForNonPagedPool */
static __inline void MdlTracepLog_MmBuildMdlForNonPagedPool(const void* mdl, const void* va, UINT64 size, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmBuildMdlForNonPagedPool",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingPointer(va, "va"),
        TraceLoggingUInt64(size, "size"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmProbeAndLockPages: logged by MmProbeAndLockPages, MmProbeAndLockSelectedPages */
static __inline void MdlTracepLog_MmProbeAndLockPages(const void* mdl, UINT8 access_mode, UINT8 operation, UINT32 status, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmProbeAndLockPages",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt8(access_mode, "access_mode"),
        TraceLoggingUInt8(operation, "operation"),
        TraceLoggingHexInt32(status, "status"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmProbeAndLockProcessPages: logged by MmProbeAndLockProcessPages */
static __inline void MdlTracepLog_MmProbeAndLockProcessPages(const void* mdl, UINT32 target_pid, UINT8 access_mode, UINT8 operation, UINT32 status, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmProbeAndLockProcessPages",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt32(target_pid, "target_pid"),
        TraceLoggingUInt8(access_mode, "access_mode"),
        TraceLoggingUInt8(operation, "operation"),
        TraceLoggingHexInt32(status, "status"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmUnlockPages: logged by MmUnlockPages */
static __inline void MdlTracepLog_MmUnlockPages(const void* mdl, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmUnlockPages",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmMapLockedPagesSpecifyCache: logged by MmMapLockedPagesSpecifyCache, MmGetSystemAddressForMdlSafe */
static __inline void MdlTracepLog_MmMapLockedPagesSpecifyCache(const void* mdl, UINT8 access_mode, UINT8 cache_type, const void* mapped_va, UINT32 bugcheck_on_failure, UINT32 priority, UINT32 status, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmMapLockedPagesSpecifyCache",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt8(access_mode, "access_mode"),
        TraceLoggingUInt8(cache_type, "cache_type"),
        TraceLoggingPointer(mapped_va, "mapped_va"),
        TraceLoggingUInt32(bugcheck_on_failure, "bugcheck_on_failure"),
        TraceLoggingUInt32(priority, "priority"),
        TraceLoggingHexInt32(status, "status"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmMapLockedPages: logged by MmMapLockedPages */
static __inline void MdlTracepLog_MmMapLockedPages(const void* mdl, UINT8 access_mode, const void* mapped_va, UINT32 status, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmMapLockedPages",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt8(access_mode, "access_mode"),
        TraceLoggingPointer(mapped_va, "mapped_va"),
        TraceLoggingHexInt32(status, "status"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmUnmapLockedPages: logged by MmUnmapLockedPages */
static __inline void MdlTracepLog_MmUnmapLockedPages(const void* mdl, const void* mapped_va, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmUnmapLockedPages",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingPointer(mapped_va, "mapped_va"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmAllocateMappingAddress: logged by MmAllocateMappingAddress, MmAllocateMappingAddressEx */
static __inline void MdlTracepLog_MmAllocateMappingAddress(const void* mapped_va, UINT64 size, UINT32 tag, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmAllocateMappingAddress",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mapped_va, "mapped_va"),
        TraceLoggingUInt64(size, "size"),
        TraceLoggingUInt32(tag, "tag"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmFreeMappingAddress: logged by MmFreeMappingAddress */
static __inline void MdlTracepLog_MmFreeMappingAddress(const void* mapped_va, UINT32 tag, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmFreeMappingAddress",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mapped_va, "mapped_va"),
        TraceLoggingUInt32(tag, "tag"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmMapLockedPagesWithReservedMapping: logged by MmMapLockedPagesWithReservedMapping */
static __inline void MdlTracepLog_MmMapLockedPagesWithReservedMapping(const void* mdl, const void* mapped_va, UINT32 tag, UINT8 cache_type, UINT32 status, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmMapLockedPagesWithReservedMapping",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingPointer(mapped_va, "mapped_va"),
        TraceLoggingUInt32(tag, "tag"),
        TraceLoggingUInt8(cache_type, "cache_type"),
        TraceLoggingHexInt32(status, "status"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmUnmapReservedMapping: logged by MmUnmapReservedMapping */
static __inline void MdlTracepLog_MmUnmapReservedMapping(const void* mdl, const void* mapped_va, UINT32 tag, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmUnmapReservedMapping",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingPointer(mapped_va, "mapped_va"),
        TraceLoggingUInt32(tag, "tag"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmAllocatePagesForMdl: logged by MmAllocatePagesForMdl */
static __inline void MdlTracepLog_MmAllocatePagesForMdl(const void* mdl, UINT64 requested_size, UINT64 size, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmAllocatePagesForMdl",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt64(requested_size, "requested_size"),
        TraceLoggingUInt64(size, "size"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmAllocatePagesForMdlEx: logged by MmAllocatePagesForMdlEx */
static __inline void MdlTracepLog_MmAllocatePagesForMdlEx(const void* mdl, UINT64 requested_size, UINT64 size, UINT8 cache_type, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmAllocatePagesForMdlEx",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt64(requested_size, "requested_size"),
        TraceLoggingUInt64(size, "size"),
        TraceLoggingUInt8(cache_type, "cache_type"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* MmFreePagesFromMdl: logged by MmFreePagesFromMdl */
static __inline void MdlTracepLog_MmFreePagesFromMdl(const void* mdl, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "MmFreePagesFromMdl",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* IoFreeMdl: logged by IoFreeMdl */
static __inline void MdlTracepLog_IoFreeMdl(const void* mdl, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "IoFreeMdl",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* ExFreePoolMdl: logged by ExFreePool */
static __inline void MdlTracepLog_ExFreePoolMdl(const void* mdl, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "ExFreePoolMdl",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(mdl, "mdl"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* KeStackAttachProcess: logged by KeStackAttachProcess */
static __inline void MdlTracepLog_KeStackAttachProcess(UINT32 target_pid, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "KeStackAttachProcess",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingUInt32(target_pid, "target_pid"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* KeUnstackDetachProcess: logged by KeUnstackDetachProcess */
static __inline void MdlTracepLog_KeUnstackDetachProcess(const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "KeUnstackDetachProcess",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* IoCompleteRequest: logged by IoCompleteRequest */
static __inline void MdlTracepLog_IoCompleteRequest(const void* irp, const void* ReturnAddress)
{
    TraceLoggingWrite(MdlTraceProvider, "IoCompleteRequest",
        TraceLoggingLevel(MDLTRACE_LEVEL), TraceLoggingKeyword(MDLTRACE_KEYWORD_CALLS),
        TraceLoggingPointer(irp, "irp"),
        TraceLoggingUInt8(MdlTracepIrql(), "irql"),
        TraceLoggingUInt32(MdlTracepEffectivePid(), "effective_pid"),
        TraceLoggingPointer(ReturnAddress, "return_address"));
}

/* ---- END GENERATED ---- */

#ifdef MDLTRACE_DEFINE_PROVIDER
TRACELOGGING_DEFINE_PROVIDER(MdlTraceProvider, MDLTRACE_PROVIDER_NAME, MDLTRACE_PROVIDER_GUID);
#endif

/* Register in DriverEntry, unregister in DriverUnload. */
#define MdlTraceRegister() TraceLoggingRegister(MdlTraceProvider)
#define MdlTraceUnregister() TraceLoggingUnregister(MdlTraceProvider)

/* ---- the wrappers: same parameters and result as the routine ------------------------ */

static MDLTRACEP_NOINLINE PMDL MdlTraceIoAllocateMdl(PVOID VirtualAddress, ULONG Length,
    BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota, PIRP Irp)
{
    PMDL mdl = IoAllocateMdl(VirtualAddress, Length, SecondaryBuffer, ChargeQuota, Irp);
    MdlTracepLog_IoAllocateMdl(mdl, VirtualAddress, Length, Irp, MDLTRACEP_RETURN_ADDRESS());
    return mdl;
}

static MDLTRACEP_NOINLINE VOID MdlTraceIoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl,
    PVOID VirtualAddress, ULONG Length)
{
    IoBuildPartialMdl(SourceMdl, TargetMdl, VirtualAddress, Length);
    MdlTracepLog_IoBuildPartialMdl(SourceMdl, TargetMdl, VirtualAddress, Length, MDLTRACEP_RETURN_ADDRESS());
}

static MDLTRACEP_NOINLINE VOID MdlTraceMmBuildMdlForNonPagedPool(PMDL Mdl)
{
    MmBuildMdlForNonPagedPool(Mdl);
    MdlTracepLog_MmBuildMdlForNonPagedPool(Mdl, MmGetMdlVirtualAddress(Mdl), MmGetMdlByteCount(Mdl),
                                           MDLTRACEP_RETURN_ADDRESS());
}

static MDLTRACEP_NOINLINE VOID MdlTraceMmProbeAndLockPages(PMDL Mdl, KPROCESSOR_MODE AccessMode,
    LOCK_OPERATION Operation)
{
    const void* ra = MDLTRACEP_RETURN_ADDRESS();
    MDLTRACEP_TRY {
        MmProbeAndLockPages(Mdl, AccessMode, Operation);
    } MDLTRACEP_EXCEPT((MdlTracepLog_MmProbeAndLockPages(Mdl, (UINT8)AccessMode, (UINT8)Operation,
                                                         MDLTRACEP_EXCEPTION_CODE(), ra),
                        EXCEPTION_CONTINUE_SEARCH)) {
    }
    MdlTracepLog_MmProbeAndLockPages(Mdl, (UINT8)AccessMode, (UINT8)Operation, 0, ra);
}

static MDLTRACEP_NOINLINE VOID MdlTraceMmProbeAndLockSelectedPages(PMDL Mdl,
    PFILE_SEGMENT_ELEMENT SegmentArray, KPROCESSOR_MODE AccessMode, LOCK_OPERATION Operation)
{
    const void* ra = MDLTRACEP_RETURN_ADDRESS();
    MDLTRACEP_TRY {
        MmProbeAndLockSelectedPages(Mdl, SegmentArray, AccessMode, Operation);
    } MDLTRACEP_EXCEPT((MdlTracepLog_MmProbeAndLockPages(Mdl, (UINT8)AccessMode, (UINT8)Operation,
                                                         MDLTRACEP_EXCEPTION_CODE(), ra),
                        EXCEPTION_CONTINUE_SEARCH)) {
    }
    MdlTracepLog_MmProbeAndLockPages(Mdl, (UINT8)AccessMode, (UINT8)Operation, 0, ra);
}

static MDLTRACEP_NOINLINE VOID MdlTraceMmProbeAndLockProcessPages(PMDL Mdl, PEPROCESS Process,
    KPROCESSOR_MODE AccessMode, LOCK_OPERATION Operation)
{
    const void* ra = MDLTRACEP_RETURN_ADDRESS();
    UINT32 target = (UINT32)(ULONG_PTR)PsGetProcessId(Process);
    MDLTRACEP_TRY {
        MmProbeAndLockProcessPages(Mdl, Process, AccessMode, Operation);
    } MDLTRACEP_EXCEPT((MdlTracepLog_MmProbeAndLockProcessPages(Mdl, target, (UINT8)AccessMode,
                            (UINT8)Operation, MDLTRACEP_EXCEPTION_CODE(), ra),
                        EXCEPTION_CONTINUE_SEARCH)) {
    }
    MdlTracepLog_MmProbeAndLockProcessPages(Mdl, target, (UINT8)AccessMode, (UINT8)Operation, 0, ra);
}

static MDLTRACEP_NOINLINE VOID MdlTraceMmUnlockPages(PMDL Mdl)
{
    MmUnlockPages(Mdl);
    MdlTracepLog_MmUnlockPages(Mdl, MDLTRACEP_RETURN_ADDRESS());
}

static MDLTRACEP_NOINLINE PVOID MdlTraceMmMapLockedPagesSpecifyCache(PMDL Mdl, KPROCESSOR_MODE AccessMode,
    MEMORY_CACHING_TYPE CacheType, PVOID RequestedAddress, ULONG BugCheckOnFailure, ULONG Priority)
{
    const void* ra = MDLTRACEP_RETURN_ADDRESS();
    PVOID va = NULL;
    MDLTRACEP_TRY {
        va = MmMapLockedPagesSpecifyCache(Mdl, AccessMode, CacheType, RequestedAddress, BugCheckOnFailure,
                                          Priority);
    } MDLTRACEP_EXCEPT((MdlTracepLog_MmMapLockedPagesSpecifyCache(Mdl, (UINT8)AccessMode, (UINT8)CacheType,
                            NULL, BugCheckOnFailure, Priority, MDLTRACEP_EXCEPTION_CODE(), ra),
                        EXCEPTION_CONTINUE_SEARCH)) {
    }
    MdlTracepLog_MmMapLockedPagesSpecifyCache(Mdl, (UINT8)AccessMode, (UINT8)CacheType, va, BugCheckOnFailure,
                                              Priority, 0, ra);
    return va;
}

/* MmGetSystemAddressForMdlSafe is a macro: it calls MmMapLockedPagesSpecifyCache only when
 * the MDL has no system mapping yet, and so does this (logged as that call). */
static MDLTRACEP_NOINLINE PVOID MdlTraceMmGetSystemAddressForMdlSafe(PMDL Mdl, ULONG Priority)
{
    PVOID va;
    if (Mdl->MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL)) {
        return Mdl->MappedSystemVa;
    }
    va = MmMapLockedPagesSpecifyCache(Mdl, KernelMode, MmCached, NULL, FALSE, Priority);
    MdlTracepLog_MmMapLockedPagesSpecifyCache(Mdl, (UINT8)KernelMode, (UINT8)MmCached, va, FALSE, Priority, 0,
                                              MDLTRACEP_RETURN_ADDRESS());
    return va;
}

static MDLTRACEP_NOINLINE PVOID MdlTraceMmMapLockedPages(PMDL Mdl, KPROCESSOR_MODE AccessMode)
{
    const void* ra = MDLTRACEP_RETURN_ADDRESS();
    PVOID va = NULL;
    MDLTRACEP_TRY {
        va = MmMapLockedPages(Mdl, AccessMode);
    } MDLTRACEP_EXCEPT((MdlTracepLog_MmMapLockedPages(Mdl, (UINT8)AccessMode, NULL, MDLTRACEP_EXCEPTION_CODE(), ra),
                        EXCEPTION_CONTINUE_SEARCH)) {
    }
    MdlTracepLog_MmMapLockedPages(Mdl, (UINT8)AccessMode, va, 0, ra);
    return va;
}

static MDLTRACEP_NOINLINE VOID MdlTraceMmUnmapLockedPages(PVOID BaseAddress, PMDL Mdl)
{
    MmUnmapLockedPages(BaseAddress, Mdl);
    MdlTracepLog_MmUnmapLockedPages(Mdl, BaseAddress, MDLTRACEP_RETURN_ADDRESS());
}

static MDLTRACEP_NOINLINE PVOID MdlTraceMmAllocateMappingAddress(SIZE_T NumberOfBytes, ULONG PoolTag)
{
    PVOID base = MmAllocateMappingAddress(NumberOfBytes, PoolTag);
    MdlTracepLog_MmAllocateMappingAddress(base, NumberOfBytes, PoolTag, MDLTRACEP_RETURN_ADDRESS());
    return base;
}

static MDLTRACEP_NOINLINE PVOID MdlTraceMmAllocateMappingAddressEx(SIZE_T NumberOfBytes, ULONG PoolTag,
    ULONG Flags)
{
    PVOID base = MmAllocateMappingAddressEx(NumberOfBytes, PoolTag, Flags);
    MdlTracepLog_MmAllocateMappingAddress(base, NumberOfBytes, PoolTag, MDLTRACEP_RETURN_ADDRESS());
    return base;
}

static MDLTRACEP_NOINLINE VOID MdlTraceMmFreeMappingAddress(PVOID BaseAddress, ULONG PoolTag)
{
    MmFreeMappingAddress(BaseAddress, PoolTag);
    MdlTracepLog_MmFreeMappingAddress(BaseAddress, PoolTag, MDLTRACEP_RETURN_ADDRESS());
}

/* status: 0 when a mapping was returned, STATUS_INSUFFICIENT_RESOURCES when NULL */
static MDLTRACEP_NOINLINE PVOID MdlTraceMmMapLockedPagesWithReservedMapping(PVOID MappingAddress, ULONG PoolTag,
    PMDL Mdl, MEMORY_CACHING_TYPE CacheType)
{
    PVOID va = MmMapLockedPagesWithReservedMapping(MappingAddress, PoolTag, Mdl, CacheType);
    MdlTracepLog_MmMapLockedPagesWithReservedMapping(Mdl, MappingAddress, PoolTag, (UINT8)CacheType,
        va != NULL ? 0u : (UINT32)STATUS_INSUFFICIENT_RESOURCES, MDLTRACEP_RETURN_ADDRESS());
    return va;
}

static MDLTRACEP_NOINLINE VOID MdlTraceMmUnmapReservedMapping(PVOID BaseAddress, ULONG PoolTag, PMDL Mdl)
{
    MmUnmapReservedMapping(BaseAddress, PoolTag, Mdl);
    MdlTracepLog_MmUnmapReservedMapping(Mdl, BaseAddress, PoolTag, MDLTRACEP_RETURN_ADDRESS());
}

static MDLTRACEP_NOINLINE PMDL MdlTraceMmAllocatePagesForMdl(PHYSICAL_ADDRESS LowAddress,
    PHYSICAL_ADDRESS HighAddress, PHYSICAL_ADDRESS SkipBytes, SIZE_T TotalBytes)
{
    PMDL mdl = MmAllocatePagesForMdl(LowAddress, HighAddress, SkipBytes, TotalBytes);
    MdlTracepLog_MmAllocatePagesForMdl(mdl, TotalBytes, mdl != NULL ? MmGetMdlByteCount(mdl) : 0,
                                       MDLTRACEP_RETURN_ADDRESS());
    return mdl;
}

static MDLTRACEP_NOINLINE PMDL MdlTraceMmAllocatePagesForMdlEx(PHYSICAL_ADDRESS LowAddress,
    PHYSICAL_ADDRESS HighAddress, PHYSICAL_ADDRESS SkipBytes, SIZE_T TotalBytes,
    MEMORY_CACHING_TYPE CacheType, ULONG Flags)
{
    PMDL mdl = MmAllocatePagesForMdlEx(LowAddress, HighAddress, SkipBytes, TotalBytes, CacheType, Flags);
    MdlTracepLog_MmAllocatePagesForMdlEx(mdl, TotalBytes, mdl != NULL ? MmGetMdlByteCount(mdl) : 0,
                                         (UINT8)CacheType, MDLTRACEP_RETURN_ADDRESS());
    return mdl;
}

static MDLTRACEP_NOINLINE VOID MdlTraceMmFreePagesFromMdl(PMDL Mdl)
{
    MmFreePagesFromMdl(Mdl);
    MdlTracepLog_MmFreePagesFromMdl(Mdl, MDLTRACEP_RETURN_ADDRESS());
}

static MDLTRACEP_NOINLINE VOID MdlTraceIoFreeMdl(PMDL Mdl)
{
    IoFreeMdl(Mdl);
    MdlTracepLog_IoFreeMdl(Mdl, MDLTRACEP_RETURN_ADDRESS());
}

static MDLTRACEP_NOINLINE VOID MdlTraceExFreePoolMdl(PMDL Mdl)
{
    ExFreePool(Mdl);
    MdlTracepLog_ExFreePoolMdl(Mdl, MDLTRACEP_RETURN_ADDRESS());
}

static MDLTRACEP_NOINLINE VOID MdlTraceIoCompleteRequest(PIRP Irp, CCHAR PriorityBoost)
{
    IoCompleteRequest(Irp, PriorityBoost);   /* Irp is not touched after the call */
    MdlTracepLog_IoCompleteRequest(Irp, MDLTRACEP_RETURN_ADDRESS());
}

#if defined(_NTIFS_INCLUDED_) || defined(MDLTRACE_HAVE_ATTACH)
static MDLTRACEP_NOINLINE VOID MdlTraceKeStackAttachProcess(PKPROCESS Process, PRKAPC_STATE ApcState)
{
    KeStackAttachProcess(Process, ApcState);
    MdlTracepLog_KeStackAttachProcess((UINT32)(ULONG_PTR)PsGetProcessId((PEPROCESS)Process),
                                      MDLTRACEP_RETURN_ADDRESS());
}

static MDLTRACEP_NOINLINE VOID MdlTraceKeUnstackDetachProcess(PRKAPC_STATE ApcState)
{
    KeUnstackDetachProcess(ApcState);
    MdlTracepLog_KeUnstackDetachProcess(MDLTRACEP_RETURN_ADDRESS());
}
#endif

/* ---- redirection: the driver's own calls go through the wrappers --------------------- */
#ifndef MDLTRACE_NO_REDIRECT
#define IoAllocateMdl MdlTraceIoAllocateMdl
#define IoBuildPartialMdl MdlTraceIoBuildPartialMdl
#define MmBuildMdlForNonPagedPool MdlTraceMmBuildMdlForNonPagedPool
#define MmProbeAndLockPages MdlTraceMmProbeAndLockPages
#define MmProbeAndLockSelectedPages MdlTraceMmProbeAndLockSelectedPages
#define MmProbeAndLockProcessPages MdlTraceMmProbeAndLockProcessPages
#define MmUnlockPages MdlTraceMmUnlockPages
#define MmMapLockedPagesSpecifyCache MdlTraceMmMapLockedPagesSpecifyCache
#define MmMapLockedPages MdlTraceMmMapLockedPages
#define MmUnmapLockedPages MdlTraceMmUnmapLockedPages
#define MmAllocateMappingAddress MdlTraceMmAllocateMappingAddress
#define MmAllocateMappingAddressEx MdlTraceMmAllocateMappingAddressEx
#define MmFreeMappingAddress MdlTraceMmFreeMappingAddress
#define MmMapLockedPagesWithReservedMapping MdlTraceMmMapLockedPagesWithReservedMapping
#define MmUnmapReservedMapping MdlTraceMmUnmapReservedMapping
#define MmAllocatePagesForMdl MdlTraceMmAllocatePagesForMdl
#define MmAllocatePagesForMdlEx MdlTraceMmAllocatePagesForMdlEx
#define MmFreePagesFromMdl MdlTraceMmFreePagesFromMdl
#define IoFreeMdl MdlTraceIoFreeMdl
#undef MmGetSystemAddressForMdlSafe
#define MmGetSystemAddressForMdlSafe MdlTraceMmGetSystemAddressForMdlSafe
#undef IoCompleteRequest
#define IoCompleteRequest MdlTraceIoCompleteRequest
#if defined(_NTIFS_INCLUDED_) || defined(MDLTRACE_HAVE_ATTACH)
#define KeStackAttachProcess MdlTraceKeStackAttachProcess
#define KeUnstackDetachProcess MdlTraceKeUnstackDetachProcess
#endif
#endif /* MDLTRACE_NO_REDIRECT */

#else /* !MDLTRACE_ENABLED: compiled out; explicit MdlTrace* names are the routines */

#define MdlTraceRegister() ((NTSTATUS)0)
#define MdlTraceUnregister() ((void)0)
#define MdlTraceIoAllocateMdl IoAllocateMdl
#define MdlTraceIoBuildPartialMdl IoBuildPartialMdl
#define MdlTraceMmBuildMdlForNonPagedPool MmBuildMdlForNonPagedPool
#define MdlTraceMmProbeAndLockPages MmProbeAndLockPages
#define MdlTraceMmProbeAndLockSelectedPages MmProbeAndLockSelectedPages
#define MdlTraceMmProbeAndLockProcessPages MmProbeAndLockProcessPages
#define MdlTraceMmUnlockPages MmUnlockPages
#define MdlTraceMmMapLockedPagesSpecifyCache MmMapLockedPagesSpecifyCache
#define MdlTraceMmGetSystemAddressForMdlSafe MmGetSystemAddressForMdlSafe
#define MdlTraceMmMapLockedPages MmMapLockedPages
#define MdlTraceMmUnmapLockedPages MmUnmapLockedPages
#define MdlTraceMmAllocateMappingAddress MmAllocateMappingAddress
#define MdlTraceMmAllocateMappingAddressEx MmAllocateMappingAddressEx
#define MdlTraceMmFreeMappingAddress MmFreeMappingAddress
#define MdlTraceMmMapLockedPagesWithReservedMapping MmMapLockedPagesWithReservedMapping
#define MdlTraceMmUnmapReservedMapping MmUnmapReservedMapping
#define MdlTraceMmAllocatePagesForMdl MmAllocatePagesForMdl
#define MdlTraceMmAllocatePagesForMdlEx MmAllocatePagesForMdlEx
#define MdlTraceMmFreePagesFromMdl MmFreePagesFromMdl
#define MdlTraceIoFreeMdl IoFreeMdl
#define MdlTraceExFreePoolMdl(Mdl) ExFreePool(Mdl)
#define MdlTraceIoCompleteRequest IoCompleteRequest
#define MdlTraceKeStackAttachProcess KeStackAttachProcess
#define MdlTraceKeUnstackDetachProcess KeUnstackDetachProcess

#endif /* MDLTRACE_ENABLED */
#endif /* MDLTRACE_H */

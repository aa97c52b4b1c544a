/* Host test double of the few DDK names capture/mdltrace.h uses (gcc on Linux): types,
 * constants and the routines, implemented by doubles.c. Not the WDK. */
#ifndef MDLTRACE_HOST_NTDDK_H
#define MDLTRACE_HOST_NTDDK_H
#include <stddef.h>
#include <stdint.h>
#include "seh_emulation.h"

#define _NTIFS_INCLUDED_ 1
#define NTKERNELAPI
#define NTAPI
#define VOID void
#define FALSE 0
#define TRUE 1
typedef void* PVOID;
typedef void* HANDLE;
typedef unsigned long ULONG;
typedef unsigned char BOOLEAN, UINT8, KIRQL;
typedef uint32_t UINT32;
typedef uint64_t UINT64;
typedef uintptr_t ULONG_PTR;
typedef size_t SIZE_T;
typedef char CCHAR;
typedef long NTSTATUS;
#define STATUS_SUCCESS ((NTSTATUS)0)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009AL)

typedef CCHAR KPROCESSOR_MODE;
enum { KernelMode, UserMode };
typedef enum { IoReadAccess, IoWriteAccess, IoModifyAccess } LOCK_OPERATION;
typedef enum { MmNonCached, MmCached, MmWriteCombined, MmHardwareCoherentCached, MmNonCachedUnordered,
               MmUSWCCached } MEMORY_CACHING_TYPE;
enum { LowPagePriority, NormalPagePriority = 16, HighPagePriority = 32 };

typedef struct _MDL { short MdlFlags; PVOID MappedSystemVa; PVOID StartVa; ULONG ByteCount; ULONG ByteOffset; } MDL, *PMDL;
#define MDL_MAPPED_TO_SYSTEM_VA 0x0001
#define MDL_SOURCE_IS_NONPAGED_POOL 0x0004
#define MmGetMdlVirtualAddress(m) ((PVOID)((char*)(m)->StartVa + (m)->ByteOffset))
#define MmGetMdlByteCount(m) ((m)->ByteCount)

typedef struct _IRP* PIRP;
typedef struct _KPROCESS* PKPROCESS;
typedef struct _KPROCESS* PEPROCESS;
typedef struct _KAPC_STATE { PKPROCESS Process; } KAPC_STATE, *PRKAPC_STATE;
typedef union { long long QuadPart; } PHYSICAL_ADDRESS;
typedef union { PVOID Buffer; UINT64 Alignment; } FILE_SEGMENT_ELEMENT, *PFILE_SEGMENT_ELEMENT;

KIRQL KeGetCurrentIrql(void);
PEPROCESS PsGetCurrentProcess(void);
HANDLE PsGetProcessId(PEPROCESS Process);
PMDL IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota, PIRP Irp);
VOID IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress, ULONG Length);
VOID MmBuildMdlForNonPagedPool(PMDL Mdl);
VOID MmProbeAndLockPages(PMDL Mdl, KPROCESSOR_MODE AccessMode, LOCK_OPERATION Operation);
VOID MmProbeAndLockProcessPages(PMDL Mdl, PEPROCESS Process, KPROCESSOR_MODE AccessMode, LOCK_OPERATION Operation);
VOID MmUnlockPages(PMDL Mdl);
PVOID MmMapLockedPagesSpecifyCache(PMDL Mdl, KPROCESSOR_MODE AccessMode, MEMORY_CACHING_TYPE CacheType,
                                   PVOID RequestedAddress, ULONG BugCheckOnFailure, ULONG Priority);
PVOID MmMapLockedPages(PMDL Mdl, KPROCESSOR_MODE AccessMode);
VOID MmUnmapLockedPages(PVOID BaseAddress, PMDL Mdl);
PVOID MmAllocateMappingAddress(SIZE_T NumberOfBytes, ULONG PoolTag);
VOID MmFreeMappingAddress(PVOID BaseAddress, ULONG PoolTag);
PVOID MmMapLockedPagesWithReservedMapping(PVOID MappingAddress, ULONG PoolTag, PMDL Mdl, MEMORY_CACHING_TYPE CacheType);
VOID MmUnmapReservedMapping(PVOID BaseAddress, ULONG PoolTag, PMDL Mdl);
PMDL MmAllocatePagesForMdl(PHYSICAL_ADDRESS Low, PHYSICAL_ADDRESS High, PHYSICAL_ADDRESS Skip, SIZE_T TotalBytes);
PMDL MmAllocatePagesForMdlEx(PHYSICAL_ADDRESS Low, PHYSICAL_ADDRESS High, PHYSICAL_ADDRESS Skip, SIZE_T TotalBytes,
                             MEMORY_CACHING_TYPE CacheType, ULONG Flags);
VOID MmFreePagesFromMdl(PMDL Mdl);
VOID IoFreeMdl(PMDL Mdl);
VOID ExFreePool(PVOID P);
VOID IoCompleteRequest(PIRP Irp, CCHAR PriorityBoost);
VOID KeStackAttachProcess(PKPROCESS Process, PRKAPC_STATE ApcState);
VOID KeUnstackDetachProcess(PRKAPC_STATE ApcState);
#endif

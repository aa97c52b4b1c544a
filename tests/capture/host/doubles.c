/* Test doubles for the host end-to-end test: a fake kernel (current CPU, thread,
 * process, attach, IRQL, clock), the Mm and Io routines the wrappers call, and the
 * TraceLogging stand-in's MdlTraceTestWrite, which prints each event as one line:
 *     E <time_ns> <cpu> <pid> <tid> <Event> <field>:<type>=<value> ...
 * Kernel-logger events the harness writes itself:  K <time_ns> <Event> <col>=<value> ...
 * The "loader" places the driver (this executable) at a kernel base: a return address
 * is written as KERNEL_BASE + its offset in the executable (dladdr), and the harness
 * writes the matching ImageLoad. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ntddk.h"
#include "TraceLoggingProvider.h"
#include "fake_kernel.h"

struct _KPROCESS { unsigned pid; };
struct _IRP { int unused; };

static FILE* out;
static int quiet;
static unsigned long long now_ns;
static int cur_cpu;
static unsigned cur_tid;
static PKPROCESS cur_process, attached;
static KIRQL cur_irql;
static uintptr_t image_base;
static unsigned long long user_map_next = 0x000001D2C3A40000ULL;
static unsigned long long system_map_next = 0xFFFFA58012300000ULL;
unsigned long long fk_events;

PKPROCESS fk_process(unsigned pid)
{
    PKPROCESS p = calloc(1, sizeof *p);
    p->pid = pid;
    return p;
}

void fk_open(const char* path, int quiet_mode)
{
    Dl_info info;
    out = path ? fopen(path, "w") : NULL;
    quiet = quiet_mode;
    dladdr((void*)&fk_open, &info);
    image_base = (uintptr_t)info.dli_fbase;
    if (out) {
        fprintf(out, "M image_base=0x%llx kernel_base=0x%llx\n", (unsigned long long)image_base, FK_KERNEL_BASE);
    }
}

void fk_close(void) { if (out) fclose(out); out = NULL; }
void fk_at(unsigned long long ns) { now_ns = ns; }
void fk_run(int cpu, PKPROCESS process, unsigned tid) { cur_cpu = cpu; cur_process = process; cur_tid = tid; attached = NULL; }
void fk_irql(KIRQL irql) { cur_irql = irql; }

void fk_kernel(const char* fmt, ...)
{
    va_list ap;
    if (!out) return;
    fprintf(out, "K %llu ", now_ns);
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    now_ns += 1000;
}

/* ---- the TraceLogging stand-in ---- */
long MdlTraceTestRegister(TraceLoggingHProvider provider)
{
    if (out) {
        const MdlTraceTestGuid* g = &provider->Id;
        fprintf(out, "P %s %08lx-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x\n", provider->Name, g->Data1, g->Data2,
                g->Data3, g->Data4[0], g->Data4[1], g->Data4[2], g->Data4[3], g->Data4[4], g->Data4[5],
                g->Data4[6], g->Data4[7]);
    }
    return 0;
}

void MdlTraceTestUnregister(TraceLoggingHProvider provider) { (void)provider; }

void MdlTraceTestWrite(TraceLoggingHProvider provider, const char* event, ...)
{
    va_list ap;
    int tag;
    FILE* f = quiet ? NULL : out;
    (void)provider;
    fk_events++;
    if (f) fprintf(f, "E %llu %d %u %u %s", now_ns, cur_cpu, cur_process->pid, cur_tid, event);
    va_start(ap, event);
    while ((tag = va_arg(ap, int)) != TLGT_END) {
        const char* name;
        if (tag == TLGT_LEVEL) { int level = va_arg(ap, int); if (f) fprintf(f, " @level=%d", level); continue; }
        if (tag == TLGT_KEYWORD) { unsigned long long k = va_arg(ap, unsigned long long); if (f) fprintf(f, " @keyword=%llu", k); continue; }
        name = va_arg(ap, const char*);
        switch (tag) {
        case TLGT_POINTER: {
            uintptr_t v = (uintptr_t)va_arg(ap, const void*);
            if (strcmp(name, "return_address") == 0) v = v - image_base + FK_KERNEL_BASE;
            if (f) fprintf(f, " %s:pointer=0x%llx", name, (unsigned long long)v);
            break;
        }
        case TLGT_UINT8: { unsigned v = va_arg(ap, unsigned); if (f) fprintf(f, " %s:uint8=%u", name, v); break; }
        case TLGT_UINT32: { unsigned v = va_arg(ap, unsigned); if (f) fprintf(f, " %s:uint32=%u", name, v); break; }
        case TLGT_HEXINT32: { unsigned v = va_arg(ap, unsigned); if (f) fprintf(f, " %s:hexint32=0x%x", name, v); break; }
        case TLGT_UINT64: { unsigned long long v = va_arg(ap, unsigned long long); if (f) fprintf(f, " %s:uint64=%llu", name, v); break; }
        default: abort();
        }
    }
    va_end(ap);
    if (f) fputc('\n', f);
    now_ns += 1000;
}

/* ---- SEH emulation (seh_emulation.h) ---- */
static fk_frame* fk_top;

fk_frame* fk_push(fk_frame* frame)
{
    frame->outer = fk_top;
    frame->live = 1;
    fk_top = frame;
    return frame;
}

void fk_pop(fk_frame* frame)
{
    if (frame->live) {
        fk_top = frame->outer;
        frame->live = 0;
    }
}

int fk_filtered(fk_frame* frame, int filter_result)
{
    fk_pop(frame);
    if (filter_result == EXCEPTION_CONTINUE_SEARCH) {
        fk_raise(frame->code);
    }
    return 1;
}

void fk_raise(unsigned long code)
{
    if (fk_top == NULL) {
        fprintf(stderr, "unhandled exception 0x%lx\n", code);
        abort();
    }
    fk_top->code = code;
    longjmp(fk_top->env, 1);
}

/* ---- the kernel routines (doubles) ---- */
KIRQL KeGetCurrentIrql(void) { return cur_irql; }
PEPROCESS PsGetCurrentProcess(void) { return attached ? attached : cur_process; }
HANDLE PsGetProcessId(PEPROCESS p) { return (HANDLE)(uintptr_t)p->pid; }

PMDL IoAllocateMdl(PVOID va, ULONG length, BOOLEAN secondary, BOOLEAN quota, PIRP irp)
{
    PMDL mdl = calloc(1, sizeof *mdl);
    (void)secondary; (void)quota; (void)irp;
    mdl->StartVa = (PVOID)((uintptr_t)va & ~(uintptr_t)0xFFF);
    mdl->ByteOffset = (ULONG)((uintptr_t)va & 0xFFF);
    mdl->ByteCount = length;
    return mdl;
}
VOID IoFreeMdl(PMDL mdl) { free(mdl); }
VOID IoBuildPartialMdl(PMDL s, PMDL t, PVOID va, ULONG n) { (void)s; t->StartVa = va; t->ByteCount = n; }
VOID MmBuildMdlForNonPagedPool(PMDL mdl) { mdl->MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL; }
/* a user buffer at FK_BAD_USER_VA is not accessible: the probe raises */
VOID MmProbeAndLockPages(PMDL mdl, KPROCESSOR_MODE m, LOCK_OPERATION o)
{
    (void)o;
    if (m == UserMode && (uintptr_t)mdl->StartVa == FK_BAD_USER_VA) fk_raise(0xC0000005UL);
}
VOID MmProbeAndLockProcessPages(PMDL mdl, PEPROCESS p, KPROCESSOR_MODE m, LOCK_OPERATION o) { (void)mdl; (void)p; (void)m; (void)o; }
VOID MmProbeAndLockSelectedPages(PMDL mdl, PFILE_SEGMENT_ELEMENT s, KPROCESSOR_MODE m, LOCK_OPERATION o) { (void)mdl; (void)s; (void)m; (void)o; }
VOID MmUnlockPages(PMDL mdl) { mdl->MdlFlags &= ~MDL_MAPPED_TO_SYSTEM_VA; }
PVOID MmMapLockedPagesSpecifyCache(PMDL mdl, KPROCESSOR_MODE mode, MEMORY_CACHING_TYPE c, PVOID req, ULONG bug, ULONG prio)
{
    unsigned long long va;
    (void)c; (void)req; (void)bug; (void)prio;
    if (mode == UserMode) { va = user_map_next; user_map_next += 0x10000; return (PVOID)(uintptr_t)(va + mdl->ByteOffset); }
    va = system_map_next; system_map_next += 0x10000;
    mdl->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    mdl->MappedSystemVa = (PVOID)(uintptr_t)(va + mdl->ByteOffset);
    return mdl->MappedSystemVa;
}
PVOID MmMapLockedPages(PMDL mdl, KPROCESSOR_MODE mode) { return MmMapLockedPagesSpecifyCache(mdl, mode, MmCached, NULL, TRUE, NormalPagePriority); }
VOID MmUnmapLockedPages(PVOID va, PMDL mdl) { (void)va; (void)mdl; }
PVOID MmAllocateMappingAddress(SIZE_T n, ULONG tag) { (void)n; (void)tag; return (PVOID)(uintptr_t)0xFFFFA58013000000ULL; }
PVOID MmAllocateMappingAddressEx(SIZE_T n, ULONG tag, ULONG flags) { (void)flags; return MmAllocateMappingAddress(n, tag); }
VOID MmFreeMappingAddress(PVOID va, ULONG tag) { (void)va; (void)tag; }
PVOID MmMapLockedPagesWithReservedMapping(PVOID va, ULONG tag, PMDL mdl, MEMORY_CACHING_TYPE c) { (void)tag; (void)c; return (char*)va + mdl->ByteOffset; }
VOID MmUnmapReservedMapping(PVOID va, ULONG tag, PMDL mdl) { (void)va; (void)tag; (void)mdl; }
PMDL MmAllocatePagesForMdl(PHYSICAL_ADDRESS l, PHYSICAL_ADDRESS h, PHYSICAL_ADDRESS s, SIZE_T n) { (void)l; (void)h; (void)s; return IoAllocateMdl(NULL, (ULONG)n, FALSE, FALSE, NULL); }
PMDL MmAllocatePagesForMdlEx(PHYSICAL_ADDRESS l, PHYSICAL_ADDRESS h, PHYSICAL_ADDRESS s, SIZE_T n, MEMORY_CACHING_TYPE c, ULONG f) { (void)c; (void)f; return MmAllocatePagesForMdl(l, h, s, n); }
VOID MmFreePagesFromMdl(PMDL mdl) { (void)mdl; }
VOID ExFreePool(PVOID p) { free(p); }
VOID IoCompleteRequest(PIRP irp, CCHAR boost) { (void)irp; (void)boost; }
VOID KeStackAttachProcess(PKPROCESS p, PRKAPC_STATE s) { s->Process = attached; attached = p; }
VOID KeUnstackDetachProcess(PRKAPC_STATE s) { attached = s->Process; }

/*
 * mdltrace.d - trace a driver's MDL calls without its source (DTrace for Windows).
 *
 *   dtrace -q -s mdltrace.d <base> <size> <module> > calls.csv
 *
 * <base> and <size>: the driver's load address and image size (kernel debugger: lm m
 * <module>), <module> its file name, e.g. "mydriver.sys". fbt entry and return probes
 * on the nt routines, kept only when the caller (the return address into the driver)
 * lies inside the module. Each call is printed when it returns as one canonical CSV
 * row (docs/capture.md); the first line is the header. Read it with
 * `traceanalyzer hazards calls.csv` (with a kernel trace of the same session for the
 * process exits and names, see docs/capture.md).
 *
 * Limits: needs DTrace for Windows and kernel debugging enabled (bcdedit /debug on);
 * pid is the thread's own process (an attached process is not seen: no effective_pid);
 * a routine that raises (a failed MmProbeAndLockPages) fires no return probe, so the
 * failed call is missing; no irql; MmGetSystemAddressForMdlSafe is a macro: it shows as
 * MmMapLockedPagesSpecifyCache when it maps; inlined or tail-called wrappers in the
 * driver move the caller. Overhead: two probes per call (several microseconds each),
 * far above the TraceLogging header's.
 * It is not run in CI (no Windows there): tests/capture checks its columns only.
 */

#pragma D option quiet

BEGIN
{
    start = timestamp;
    printf("time_ns,event,cpu,pid,tid,mdl,source_mdl,va,size,requested_size,access_mode,operation,cache_type,mapped_va,priority,bugcheck_on_failure,irp,tag,status,caller\n");
}

/* ---- entry: remember the arguments and the call site of calls from the module ---- */
fbt:nt:IoAllocateMdl:entry,
fbt:nt:IoBuildPartialMdl:entry,
fbt:nt:MmBuildMdlForNonPagedPool:entry,
fbt:nt:MmProbeAndLockPages:entry,
fbt:nt:MmUnlockPages:entry,
fbt:nt:MmMapLockedPagesSpecifyCache:entry,
fbt:nt:MmUnmapLockedPages:entry,
fbt:nt:MmAllocateMappingAddress:entry,
fbt:nt:MmFreeMappingAddress:entry,
fbt:nt:MmMapLockedPagesWithReservedMapping:entry,
fbt:nt:MmUnmapReservedMapping:entry,
fbt:nt:MmAllocatePagesForMdlEx:entry,
fbt:nt:MmFreePagesFromMdl:entry,
fbt:nt:IoFreeMdl:entry
/caller >= $1 && caller < $1 + $2/
{
    self->ra = caller;
    self->a0 = arg0;
    self->a1 = arg1;
    self->a2 = arg2;
    self->a3 = arg3;
    self->a4 = arg4;
    self->a5 = arg5;
}

/* ---- return: one row per call ---- */
fbt:nt:IoAllocateMdl:return
/self->ra/
{
    printf("%d,IoAllocateMdl,%d,%d,%d,0x%x,,0x%x,%d,,,,,,,,0x%x,,,%s+0x%x\n", timestamp - start, cpu, pid, tid,
           arg1, self->a0, self->a1, self->a4, $$3, self->ra - $1);
    self->ra = 0;
}

fbt:nt:IoBuildPartialMdl:return
/self->ra/
{
    printf("%d,IoBuildPartialMdl,%d,%d,%d,0x%x,0x%x,0x%x,%d,,,,,,,,,,,%s+0x%x\n", timestamp - start, cpu, pid, tid,
           self->a1, self->a0, self->a2, self->a3, $$3, self->ra - $1);
    self->ra = 0;
}

fbt:nt:MmBuildMdlForNonPagedPool:return,
fbt:nt:MmUnlockPages:return,
fbt:nt:MmFreePagesFromMdl:return,
fbt:nt:IoFreeMdl:return
/self->ra/
{
    printf("%d,%s,%d,%d,%d,0x%x,,,,,,,,,,,,,,%s+0x%x\n", timestamp - start, probefunc, cpu, pid, tid,
           self->a0, $$3, self->ra - $1);
    self->ra = 0;
}

fbt:nt:MmProbeAndLockPages:return
/self->ra/
{
    printf("%d,MmProbeAndLockPages,%d,%d,%d,0x%x,,,,,%d,%d,,,,,,,0x0,%s+0x%x\n", timestamp - start, cpu, pid, tid,
           self->a0, self->a1, self->a2, $$3, self->ra - $1);
    self->ra = 0;
}

fbt:nt:MmMapLockedPagesSpecifyCache:return
/self->ra/
{
    printf("%d,MmMapLockedPagesSpecifyCache,%d,%d,%d,0x%x,,,,,%d,,%d,0x%x,%d,%d,,,,%s+0x%x\n", timestamp - start, cpu,
           pid, tid, self->a0, self->a1, self->a2, arg1, self->a5, self->a4, $$3, self->ra - $1);
    self->ra = 0;
}

fbt:nt:MmUnmapLockedPages:return
/self->ra/
{
    printf("%d,MmUnmapLockedPages,%d,%d,%d,0x%x,,,,,,,,0x%x,,,,,,%s+0x%x\n", timestamp - start, cpu, pid, tid,
           self->a1, self->a0, $$3, self->ra - $1);
    self->ra = 0;
}

fbt:nt:MmAllocateMappingAddress:return
/self->ra/
{
    printf("%d,MmAllocateMappingAddress,%d,%d,%d,,,,%d,,,,,0x%x,,,,%d,,%s+0x%x\n", timestamp - start, cpu, pid, tid,
           self->a0, arg1, self->a1, $$3, self->ra - $1);
    self->ra = 0;
}

fbt:nt:MmFreeMappingAddress:return
/self->ra/
{
    printf("%d,MmFreeMappingAddress,%d,%d,%d,,,,,,,,,0x%x,,,,%d,,%s+0x%x\n", timestamp - start, cpu, pid, tid,
           self->a0, self->a1, $$3, self->ra - $1);
    self->ra = 0;
}

fbt:nt:MmMapLockedPagesWithReservedMapping:return
/self->ra/
{
    printf("%d,MmMapLockedPagesWithReservedMapping,%d,%d,%d,0x%x,,,,,,,%d,0x%x,,,,%d,%s,%s+0x%x\n", timestamp - start,
           cpu, pid, tid, self->a2, self->a3, self->a0, self->a1, arg1 != 0 ? "0x0" : "0xC000009A", $$3,
           self->ra - $1);
    self->ra = 0;
}

fbt:nt:MmUnmapReservedMapping:return
/self->ra/
{
    printf("%d,MmUnmapReservedMapping,%d,%d,%d,0x%x,,,,,,,,0x%x,,,,%d,,%s+0x%x\n", timestamp - start, cpu, pid, tid,
           self->a2, self->a0, self->a1, $$3, self->ra - $1);
    self->ra = 0;
}

fbt:nt:MmAllocatePagesForMdlEx:return
/self->ra/
{
    printf("%d,MmAllocatePagesForMdlEx,%d,%d,%d,0x%x,,,,%d,,,%d,,,,,,,%s+0x%x\n", timestamp - start, cpu, pid, tid,
           arg1, self->a3, self->a4, $$3, self->ra - $1);
    self->ra = 0;
}

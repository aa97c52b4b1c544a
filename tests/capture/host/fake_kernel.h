/* The fake kernel of the host end-to-end test (doubles.c). */
#ifndef MDLTRACE_FAKE_KERNEL_H
#define MDLTRACE_FAKE_KERNEL_H
#define FK_KERNEL_BASE 0xFFFFF80012340000ULL
#define FK_IMAGE_SIZE 0x01000000ULL
#define FK_BAD_USER_VA 0x0000000000010000ULL   /* MmProbeAndLockPages raises on it */
PKPROCESS fk_process(unsigned pid);
void fk_open(const char* path, int quiet);
void fk_close(void);
void fk_at(unsigned long long ns);
void fk_run(int cpu, PKPROCESS process, unsigned tid);
void fk_irql(KIRQL irql);
void fk_kernel(const char* fmt, ...);
extern unsigned long long fk_events;
#endif

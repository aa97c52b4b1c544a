/* __try / __except for the host build (gcc has no SEH), with setjmp/longjmp: enough for
 * the wrappers' filters and a driver's own handler. A filter returning
 * EXCEPTION_CONTINUE_SEARCH (0) passes the exception to the enclosing frame;
 * EXCEPTION_EXECUTE_HANDLER (1) runs the handler. fk_raise(code) raises. */
#ifndef MDLTRACE_SEH_EMULATION_H
#define MDLTRACE_SEH_EMULATION_H
#include <setjmp.h>

typedef struct fk_frame { jmp_buf env; struct fk_frame* outer; unsigned long code; int live; } fk_frame;
fk_frame* fk_push(fk_frame* frame);
void fk_pop(fk_frame* frame);
int fk_filtered(fk_frame* frame, int filter_result);   /* 0: passes the exception on */
void fk_raise(unsigned long code);

#define EXCEPTION_EXECUTE_HANDLER 1
#define EXCEPTION_CONTINUE_SEARCH 0
#define MDLTRACE_TRY \
    for (fk_frame fk_f, *fk_p = fk_push(&fk_f); fk_p; fk_pop(&fk_f), fk_p = 0) if (setjmp(fk_f.env) == 0)
#define MDLTRACE_EXCEPT(filter) else if (fk_filtered(&fk_f, (filter)))
#define MDLTRACE_EXCEPTION_CODE() (fk_f.code)
#endif

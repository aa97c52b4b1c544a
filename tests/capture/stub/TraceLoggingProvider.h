/*
 * Test-only stand-in for the WDK's TraceLoggingProvider.h (which is not
 * redistributable): the same macro names, expanding to one variadic call
 * MdlTraceTestWrite(provider, event, tag, [name,] value, ..., TLGT_END) that a test
 * build implements (tests/capture/host/emit.c). Each field macro converts its value to
 * the field's C type, so a wrapper passing a wrong type is a compile error here as with
 * the real header.
 */
#ifndef MDLTRACE_TEST_TRACELOGGINGPROVIDER_H
#define MDLTRACE_TEST_TRACELOGGINGPROVIDER_H

typedef struct MdlTraceTestGuid {
    unsigned long Data1;
    unsigned short Data2, Data3;
    unsigned char Data4[8];
} MdlTraceTestGuid;

typedef struct MdlTraceTestProviderData {
    const char* Name;
    MdlTraceTestGuid Id;
} MdlTraceTestProviderData;

typedef const MdlTraceTestProviderData* TraceLoggingHProvider;

enum { TLGT_END, TLGT_LEVEL, TLGT_KEYWORD, TLGT_POINTER, TLGT_UINT8, TLGT_UINT32, TLGT_UINT64, TLGT_HEXINT32 };

void MdlTraceTestWrite(TraceLoggingHProvider provider, const char* event, ...);
long MdlTraceTestRegister(TraceLoggingHProvider provider);
void MdlTraceTestUnregister(TraceLoggingHProvider provider);

#define TLGT_GUID_INIT(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7) { a, b, c, { d0, d1, d2, d3, d4, d5, d6, d7 } }
#define TRACELOGGING_DECLARE_PROVIDER(h) extern TraceLoggingHProvider const h
#define TRACELOGGING_DEFINE_PROVIDER(h, name, guid) \
    static const MdlTraceTestProviderData h##_tlgData = { name, TLGT_GUID_INIT guid }; \
    TraceLoggingHProvider const h = &h##_tlgData
#define TraceLoggingRegister(h) MdlTraceTestRegister(h)
#define TraceLoggingUnregister(h) MdlTraceTestUnregister(h)

#define TraceLoggingWrite(h, name, ...) MdlTraceTestWrite(h, name, __VA_ARGS__, TLGT_END)
#define TraceLoggingLevel(level) TLGT_LEVEL, (int)(level)
#define TraceLoggingKeyword(keyword) TLGT_KEYWORD, (unsigned long long)(keyword)
#define TraceLoggingPointer(value, name) TLGT_POINTER, (const char*)(name), (const void*)(value)
#define TraceLoggingUInt8(value, name) TLGT_UINT8, (const char*)(name), (unsigned)(UINT8)(value)
#define TraceLoggingUInt32(value, name) TLGT_UINT32, (const char*)(name), (unsigned)(UINT32)(value)
#define TraceLoggingUInt64(value, name) TLGT_UINT64, (const char*)(name), (unsigned long long)(UINT64)(value)
#define TraceLoggingHexInt32(value, name) TLGT_HEXINT32, (const char*)(name), (unsigned)(UINT32)(value)

#endif

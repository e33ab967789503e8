/* A stand-in bcryptprimitives.dll for wine 8, which lacks it: Rust's std (1.78+) imports
 * ProcessPrng from it for random numbers. Forwarded to advapi32's RtlGenRandom
 * (SystemFunction036), which wine has. Built with mingw-w64 by scripts/test-xplat.sh. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

/*
 * TEST-ONLY stand-in for bcryptprimitives.dll, which every Windows since 8
 * ships and wine 8.0 lacks. Rust's std on Windows takes its random numbers
 * from ProcessPrng there, so without this no Rust program starts under
 * wine 8.0 ("Library bcryptprimitives.dll not found"). runner.sh copies it
 * next to the executable under test; it is never installed for users.
 */
#include <windows.h>

/* RtlGenRandom, exported by advapi32 under this name. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

/* A stand-in for bcryptprimitives.dll, which Wine 8.0 lacks.
 *
 * Rust's standard library (1.78 and later) imports ProcessPrng from bcryptprimitives.dll to
 * seed its hash maps; without this DLL, Wine 8.0 cannot start any program Rust builds
 * (status c0000135). This stub exports ProcessPrng and fills the buffer from the system RNG
 * through BCryptGenRandom, which Wine does implement. It is used only in the Wine prefix of
 * the test suite, never shipped. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

// The i386 system call ABI from a 64-bit process (int $0x80, where the kernel has IA32
// emulation), for the fixtures that check that traps and locks hold on every ABI the kernel
// runs. Pointers must lie below 4 GiB: a static binary's .rodata does.
#pragma once
#if defined(__x86_64__)
static long int80(long nr, long a, long b, long c, long d, long e) {
    long rc;
    __asm__ volatile("push %%rbp\n\tint $0x80\n\tpop %%rbp" : "=a"(rc) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e) : "memory", "r8", "r9", "r10", "r11");
    return rc;
}
#endif

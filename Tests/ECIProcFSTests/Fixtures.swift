// Real text of the development machine (an AMD EPYC VM, kernel 6.18, cgroup v1 hybrid), taken
// with cat; the 4-CPU variants repeat its CPU block / lines with adjusted numbers, since the
// machine has 2 CPUs and the views must be seen dropping CPUs from the middle.

enum Fixtures {
    /// /proc/meminfo of the development machine (no swap).
    static let meminfo = """
MemTotal:       24684084 kB
MemFree:        20688364 kB
MemAvailable:   24152328 kB
Buffers:           34228 kB
Cached:          3451852 kB
SwapCached:            0 kB
Active:          2018708 kB
Inactive:        1471336 kB
Active(anon):       1516 kB
Inactive(anon):    11320 kB
Active(file):    2017192 kB
Inactive(file):  1460016 kB
Unevictable:       13136 kB
Mlocked:           12216 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Zswap:                 0 kB
Zswapped:              0 kB
Dirty:             24464 kB
Writeback:             0 kB
AnonPages:         17104 kB
Mapped:            15892 kB
Shmem:              8872 kB
KReclaimable:     349036 kB
Slab:             399116 kB
SReclaimable:     349036 kB
SUnreclaim:        50080 kB
KernelStack:        1356 kB
PageTables:         1296 kB
SecPageTables:         0 kB
NFS_Unstable:          0 kB
Bounce:                0 kB
WritebackTmp:          0 kB
CommitLimit:    12342040 kB
Committed_AS:      64540 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       14140 kB
VmallocChunk:          0 kB
Percpu:             1792 kB
AnonHugePages:         0 kB
ShmemHugePages:        0 kB
ShmemPmdMapped:        0 kB
FileHugePages:    145408 kB
FilePmdMapped:         0 kB
Balloon:               0 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
DirectMap4k:       28672 kB
DirectMap2M:     2068480 kB
DirectMap1G:    25165824 kB

"""

    /// /proc/stat of the development machine (2 CPUs).
    static let stat2 = """
cpu  4938184 17490 2048893 7003481 41363 0 14710 5668 0 0
cpu0 2424331 8760 954384 3628777 8205 0 3244 2808 0 0
cpu1 2513853 8730 1094509 3374704 33158 0 11465 2859 0 0
intr 130937737 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 14 0 0 0 0 14203 14809 0 1168 1 10011489 0 36958 22745 0 35101 109911 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
ctxt 408527969
btime 1796062794
processes 44454979
procs_running 1
procs_blocked 0
softirq 87505598 0 4619781 10342 75249 10011158 0 55 12507296 0 60281717

"""

    /// /proc/stat with 4 CPUs: cpu0 and cpu1 are the machine's, cpu2 and cpu3 derived; the
    /// aggregate is their sum, as the kernel's is.
    static let stat4 = """
cpu  8013365 28432 3311942 11412422 64102 7 22881 9209 7 7
cpu0 2424331 8760 954384 3628777 8205 0 3244 2808 0 0
cpu1 2513853 8730 1094509 3374704 33158 0 11465 2859 0 0
cpu2 1818248 6570 715788 2721582 6153 0 2433 2106 0 0
cpu3 1256933 4372 547261 1687359 16586 7 5739 1436 7 7
intr 130937737 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 14 0 0 0 0 14203 14809 0 1168 1 10011489 0 36958 22745 0 35101 109911 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
ctxt 408527969
btime 1796062794
processes 44454979
procs_running 1
procs_blocked 0
softirq 87505598 0 4619781 10342 75249 10011158 0 55 12507296 0 60281717

"""

    /// /proc/cpuinfo of the development machine (2 CPUs).
    static let cpuinfo2 = """
processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
cpu MHz\t\t: 2596.122
cache size\t: 1024 KB
physical id\t: 0
siblings\t: 2
core id\t\t: 0
cpu cores\t: 2
apicid\t\t: 0
initial apicid\t: 0
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: 28
wp\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm avx512_vp2intersect
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso spectre_v2_user
bogomips\t: 5192.24
TLB size\t: 192 4K pages
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: 48 bits physical, 48 bits virtual
power management:

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
cpu MHz\t\t: 2596.122
cache size\t: 1024 KB
physical id\t: 0
siblings\t: 2
core id\t\t: 1
cpu cores\t: 2
apicid\t\t: 1
initial apicid\t: 1
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: 28
wp\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm avx512_vp2intersect
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso spectre_v2_user
bogomips\t: 5192.24
TLB size\t: 192 4K pages
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: 48 bits physical, 48 bits virtual
power management:


"""

    /// /proc/cpuinfo with 4 CPUs built from the machine's block (processor, core id, apicid,
    /// siblings and cpu cores adjusted).
    static let cpuinfo4 = """
processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
cpu MHz\t\t: 2596.122
cache size\t: 1024 KB
physical id\t: 0
siblings\t: 4
core id\t\t: 0
cpu cores\t: 4
apicid\t\t: 0
initial apicid\t: 0
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: 28
wp\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm avx512_vp2intersect
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso spectre_v2_user
bogomips\t: 5192.24
TLB size\t: 192 4K pages
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: 48 bits physical, 48 bits virtual
power management:

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
cpu MHz\t\t: 2596.122
cache size\t: 1024 KB
physical id\t: 0
siblings\t: 4
core id\t\t: 1
cpu cores\t: 4
apicid\t\t: 1
initial apicid\t: 1
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: 28
wp\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm avx512_vp2intersect
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso spectre_v2_user
bogomips\t: 5192.24
TLB size\t: 192 4K pages
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: 48 bits physical, 48 bits virtual
power management:

processor\t: 2
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
cpu MHz\t\t: 2596.122
cache size\t: 1024 KB
physical id\t: 0
siblings\t: 4
core id\t\t: 2
cpu cores\t: 4
apicid\t\t: 2
initial apicid\t: 2
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: 28
wp\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm avx512_vp2intersect
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso spectre_v2_user
bogomips\t: 5192.24
TLB size\t: 192 4K pages
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: 48 bits physical, 48 bits virtual
power management:

processor\t: 3
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
cpu MHz\t\t: 2596.122
cache size\t: 1024 KB
physical id\t: 0
siblings\t: 4
core id\t\t: 3
cpu cores\t: 4
apicid\t\t: 3
initial apicid\t: 3
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: 28
wp\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm avx512_vp2intersect
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso spectre_v2_user
bogomips\t: 5192.24
TLB size\t: 192 4K pages
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: 48 bits physical, 48 bits virtual
power management:


"""

    /// /proc/self/cgroup of a process on the development machine (v1 hybrid).
    static let hybridCgroup = """
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/e4a5ad91f39769a4d5c352c48281e40c
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/

"""

    /// memory.stat of a v1 memory cgroup on the development machine.
    static let memoryStatV1 = """
cache 43823104
rss 9166848
rss_huge 0
shmem 0
mapped_file 24576
dirty 24940544
writeback 0
workingset_refault_anon 0
workingset_refault_file 2277
swap 0
swapcached 0
pgpgin 345001
pgpgout 335835
pgfault 488165
pgmajfault 105
inactive_anon 9039872
active_anon 12288
inactive_file 23977984
active_file 19845120
unevictable 0
hierarchical_memory_limit 9223372036854771712
hierarchical_memsw_limit 9223372036854771712
total_cache 43823104
total_rss 9166848
total_rss_huge 0
total_shmem 0
total_mapped_file 24576
total_dirty 24940544
total_writeback 0
total_workingset_refault_anon 0
total_workingset_refault_file 2277
total_swap 0
total_swapcached 0
total_pgpgin 345001
total_pgpgout 335835
total_pgfault 488165
total_pgmajfault 105
total_inactive_anon 9039872
total_active_anon 12288
total_inactive_file 23977984
total_active_file 19845120
total_unevictable 0

"""

    /// memory.stat of a cgroup v2 container (kernel 6.x key set; a Debian container running a
    /// small service), in bytes.
    static let memoryStatV2 = """
        anon 52428800
        file 104857600
        kernel 8388608
        kernel_stack 1048576
        pagetables 2097152
        sec_pagetables 0
        percpu 524288
        sock 0
        vmalloc 0
        shmem 4194304
        zswap 0
        zswapped 0
        file_mapped 20971520
        file_dirty 1048576
        file_writeback 0
        swapcached 0
        anon_thp 0
        file_thp 0
        shmem_thp 0
        inactive_anon 50331648
        active_anon 6291456
        inactive_file 62914560
        active_file 37748736
        unevictable 0
        slab_reclaimable 3145728
        slab_unreclaimable 1048576
        slab 4194304
        workingset_refault_anon 0
        workingset_refault_file 0
        pgfault 123456
        pgmajfault 12

        """

    /// /proc/self/cgroup of a container's process on a pure cgroup v2 host (the VM).
    static let v2Cgroup = "0::/system.slice/docker-4c1d2e3f.scope\n"

    /// /proc/cpuinfo of a 4-core arm64 board (Raspberry Pi 4, 64-bit kernel): no "siblings",
    /// and a trailing block without "processor".
    static let cpuinfoArm64 = """
        processor\t: 0
        BogoMIPS\t: 108.00
        Features\t: fp asimd evtstrm crc32 cpuid
        CPU implementer\t: 0x41
        CPU architecture: 8
        CPU variant\t: 0x0
        CPU part\t: 0xd08
        CPU revision\t: 3

        processor\t: 1
        BogoMIPS\t: 108.00
        Features\t: fp asimd evtstrm crc32 cpuid
        CPU implementer\t: 0x41
        CPU architecture: 8
        CPU variant\t: 0x0
        CPU part\t: 0xd08
        CPU revision\t: 3

        processor\t: 2
        BogoMIPS\t: 108.00
        Features\t: fp asimd evtstrm crc32 cpuid
        CPU implementer\t: 0x41
        CPU architecture: 8
        CPU variant\t: 0x0
        CPU part\t: 0xd08
        CPU revision\t: 3

        processor\t: 3
        BogoMIPS\t: 108.00
        Features\t: fp asimd evtstrm crc32 cpuid
        CPU implementer\t: 0x41
        CPU architecture: 8
        CPU variant\t: 0x0
        CPU part\t: 0xd08
        CPU revision\t: 3

        Hardware\t: BCM2835
        Revision\t: c03111
        Serial\t\t: 10000000a1b2c3d4
        Model\t\t: Raspberry Pi 4 Model B Rev 1.1

        """
}

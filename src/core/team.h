/*
 * team.h - how many threads one frame's cipher uses, decided while it runs.
 *
 * A frame's network is a sequence of short parallel regions (one per layer, 0.3-1 ms each at
 * 512x512), each ending where every thread of the team has arrived. On an idle machine two
 * threads finish a frame in about 0.8x the time of one. On a machine busy with other work the
 * scheduler takes a core from one of them for a whole time slice (several ms) now and then, and
 * whichever thread still runs waits for it at the end of the region: one frame at two threads
 * then took 44-62 ms against 35-40 ms at one thread in some runs. No schedule of the work
 * inside a region avoids that wait once a thread holding part of the work is preempted.
 *
 * So the team measures itself. After every region it compares the region's elapsed time with
 * what the calling thread alone would have taken for all of the region's work (its own time
 * for its share, scaled to the whole). Once the regions of a frame have together taken longer
 * than that estimate by more than DCMCI_TEAM_SLACK_NS, the rest of the frame runs on the calling
 * thread alone, and so do the next frames: 1, then 2, 4 ... 64 of them, doubling each time two
 * threads lose again, before two threads are tried once more. A frame that two threads finish
 * without losing resets that count to 1. An idle machine never trips it (elapsed time stays
 * near 0.6x the estimate); a busy one pays at most the slack and one preempted wait per probe.
 *
 * The decision never changes a result: every region computes the same bits on any number of
 * threads (network.h, keystream.c). It changes only which thread computes which rows.
 */
#ifndef DCMC_CORE_TEAM_H
#define DCMC_CORE_TEAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef DCMC_HAVE_OPENMP
#include <omp.h>
#endif

/* The calling thread's number in its OpenMP team; 0 outside a region or without OpenMP. */
static inline int dcmci_thread_id(void)
{
#ifdef DCMC_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* How much longer than one thread's estimate a frame's regions may take before the frame goes
 * on alone: a little above what waking a sleeping helper costs a frame on an idle machine
 * (about 10-50 us a region, 20 regions), far below one preempted time slice. */
#define DCMCI_TEAM_SLACK_NS 1000000u
#define DCMCI_TEAM_BACKOFF_MAX 64u

typedef struct dcmci_team {
    int threads;            /* the most a region uses (>= 1) */
    int alone;              /* the current frame runs on the calling thread only */
    unsigned skip;          /* frames still to run alone before two threads are tried again */
    unsigned backoff;       /* frames to run alone after the next fallback */
    uint64_t wall_ns;       /* this frame's measured regions: elapsed */
    uint64_t alone_ns;      /* ... and the calling thread's estimate for doing them alone */
    unsigned regions;       /* regions this frame, for the test hook */
    unsigned force_after;   /* test hook (dcmci_team_force) */
} dcmci_team;

void dcmci_team_init(dcmci_team *t, int threads);

/* A frame begins: it runs alone while frames are being skipped, on every thread otherwise. */
void dcmci_team_frame(dcmci_team *t);

/* Threads for the next region. */
static inline int dcmci_team_size(const dcmci_team *t)
{
    return t->alone ? 1 : t->threads;
}

/* A region on dcmci_team_size() > 1 threads took wall_ns; the calling thread did `own` of its
 * `items` equal items in own_ns (from the region's start to its last item's end). */
void dcmci_team_region(dcmci_team *t, uint64_t wall_ns, uint64_t own_ns, size_t own, size_t items);

/* A region whose estimate for the calling thread alone was reckoned by its caller. */
void dcmci_team_account(dcmci_team *t, uint64_t wall_ns, uint64_t alone_ns);

/* A thread that converts file after file makes a new frame cipher, and so a new team, for each
 * file. What the last team of the calling thread learnt (frames still to run alone, the backoff)
 * is handed on to the next, so that a tree of single-frame files on a busy machine does not pay
 * for the first loss again at every file. Teams of one thread neither take nor give. */
void dcmci_team_inherit(dcmci_team *t);
void dcmci_team_hand_on(const dcmci_team *t);

/* Test hook, not API: frames from now on go alone after `regions` regions and never because of
 * what is measured (UINT_MAX: never alone); 0 returns to measuring. */
void dcmci_team_force(dcmci_team *t, unsigned regions);

#endif

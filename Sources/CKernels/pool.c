// The thread pool core: workers created once, woken per job by a generation counter. They spin a
// short while before sleeping on a condition variable, because decode issues thousands of small
// jobs per second and a futex wake per job would cost more than the job.
#include "CKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

// A spin iteration is a compiler barrier and a load, without x86 PAUSE: on the virtual machines
// we measured, PAUSE cost 23 ns and made workers so slow to notice a job that they took 1% of
// 2 µs items instead of 21%.
#if defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

// Spins before a worker sleeps (a fraction of a millisecond) and before a waiting caller yields.
enum { WORKER_SPINS = 1 << 18, CALLER_SPINS = 1 << 14 };

struct pk_pool {
    int threads;
    pthread_t *workers;
    // The job id in the high 32 bits and the next unclaimed index in the low 32: a worker that
    // woke late for a finished job cannot claim an index of the next one.
    atomic_ullong claim;
    atomic_long done;        // items finished in the current job
    atomic_long generation;  // bumped once per job; workers look for work when it changes
    atomic_int sleepers;     // workers blocked on `wake`
    atomic_int busy;         // a job is running; nested or concurrent calls run serially
    atomic_int shutdown;
    // Job parameters, double-buffered by job parity: job g + 1's are written while a worker that
    // woke late for job g may still read g's. Sequentially consistent with `claim`, so a worker
    // that saw a newer job's parameters also sees that job's id in `claim` and claims nothing.
    struct { atomic_long count; atomic_uintptr_t task, ctx; } slot[2];
    pthread_mutex_t lock;
    pthread_cond_t wake;
};

// Claims and runs items of job `job` until none are left or a newer job replaced it. The caller
// waits for items, not for workers, so a worker that the OS has not scheduled never delays a job.
static void run_items(pk_pool *p, unsigned long long job) {
    const long count = atomic_load(&p->slot[job & 1].count);
    const pk_task task = (pk_task)atomic_load(&p->slot[job & 1].task);
    void *const ctx = (void *)atomic_load(&p->slot[job & 1].ctx);
    unsigned long long c = atomic_load(&p->claim);
    for (;;) {
        if ((c >> 32) != job || (long)(c & 0xffffffffu) >= count) return;
        if (!atomic_compare_exchange_weak(&p->claim, &c, c + 1)) continue;
        task(ctx, (long)(c & 0xffffffffu));
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        c = atomic_load(&p->claim);
    }
}

static void *worker_main(void *arg) {
    pk_pool *p = arg;
    long seen = 0;
    for (;;) {
        long g = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int spins = 0; g == seen && spins < WORKER_SPINS; spins++) {
            cpu_relax();
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        seen = g;
        if (atomic_load_explicit(&p->shutdown, memory_order_acquire)) return NULL;
        run_items(p, (unsigned long long)g & 0xffffffffu);
    }
}

static void publish(pk_pool *p) {
    // Sequentially consistent with the worker's sleepers increment: either the worker sees the
    // new generation before it waits, or we see it sleeping and wake it.
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
}

pk_pool *pk_pool_create(int threads) {
    if (threads < 1) threads = 1;
    pk_pool *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->threads = threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (threads > 1) {
        p->workers = calloc((size_t)threads - 1, sizeof(pthread_t));
        if (p->workers == NULL) { free(p); return NULL; }
        for (int t = 0; t < threads - 1; t++) {
            if (pthread_create(&p->workers[t], NULL, worker_main, p) != 0) {
                p->threads = t + 1;
                pk_pool_destroy(p);
                return NULL;
            }
        }
    }
    return p;
}

void pk_pool_destroy(pk_pool *p) {
    if (p == NULL) return;
    if (p->threads > 1) {
        atomic_store(&p->shutdown, 1);
        publish(p);
        for (int t = 0; t < p->threads - 1; t++) pthread_join(p->workers[t], NULL);
    }
    free(p->workers);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void pk_pool_run(pk_pool *p, long count, pk_task task, void *ctx) {
    if (count <= 0) return;
    int expected = 0;
    if (p->threads == 1 || count == 1 || count > 0xffffffffL ||
        !atomic_compare_exchange_strong(&p->busy, &expected, 1)) {
        for (long i = 0; i < count; i++) task(ctx, i);
        return;
    }
    const unsigned long long job = (unsigned long long)atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    atomic_store(&p->slot[job & 1].count, count);
    atomic_store(&p->slot[job & 1].task, (uintptr_t)task);
    atomic_store(&p->slot[job & 1].ctx, (uintptr_t)ctx);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store(&p->claim, (job & 0xffffffffu) << 32);
    publish(p);
    run_items(p, job & 0xffffffffu);
    for (int spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < count; spins++) {
        if (spins < CALLER_SPINS) cpu_relax(); else sched_yield();
    }
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}

int pk_cpu_count(void) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static atomic_ullong serial_counter;

unsigned long long pk_next_serial(void) { return atomic_fetch_add(&serial_counter, 1) + 1; }

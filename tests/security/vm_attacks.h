/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * vm_attacks: a hostile VM played by fake_vm.h (see vm_attacks.c for the
 * modes).  What the attack files share: the checks, which print
 * "FAIL: ..." and count, and the fake VMs' set-up.
 */
#ifndef VHCA_TESTS_VM_ATTACKS_H
#define VHCA_TESTS_VM_ATTACKS_H

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "attack.h"
#include "device/vm.h"
#include "fake_vm.h"

#define RAM_SIZE (64ull << 20)
#define CANARY_ZONE (RAM_SIZE / 2)	/* the upper half: never a queue */
#define ALL_ACCESS                                                           \
	(IB_UVERBS_ACCESS_LOCAL_WRITE | IB_UVERBS_ACCESS_REMOTE_WRITE |      \
	 IB_UVERBS_ACCESS_REMOTE_READ | IB_UVERBS_ACCESS_REMOTE_ATOMIC)

extern int checks, failures;

/* "0", "-EINVAL", "no answer", ...: @e as the checks name it. */
const char *name_of(int e, char *buf, size_t n);
/* A check that @got is @want; prints "FAIL: @what: ..." when it is not. */
bool expect(const char *what, int got, int want);
bool expect_true(const char *what, bool ok);
/* "MODE: N checks, M failed"; the exit status. */
int finish(const char *mode);
/* A set-up step that must succeed (exit 2 otherwise). */
void must(int ret, const char *what);
/* A fake VM of RAM_SIZE attached to VF @vf. */
void start(struct fake_vm *vm, const char *run_dir, unsigned int vf);
void rnd_seed(uint64_t seed);
uint64_t rnd(void);
/* The status line of @dev in $SYSFS_PATH/module/vhca/status. */
void status_line(const char *dev, char *buf, size_t n);

/* The modes (vm_attack_garbage.c, vm_attack_memory.c, vm_attack_datapath.c). */
int garbage(const char *run_dir, unsigned int va, unsigned int vb,
	    uint64_t seed);
int memory(const char *run_dir, unsigned int vf, pid_t vhcad);
int datapath(const char *run_dir, unsigned int va, unsigned int vb,
	     const char *dir);
int host_target(const char *dev, const char *dir);
int vm_peer(const char *run_dir, unsigned int vf, const char *dir);
int host_peer(const char *dev, const char *dir);
int clean_pair(const char *run_dir, unsigned int va, unsigned int vb);
int gone_watch(const char *run_dir, unsigned int vf);

#endif

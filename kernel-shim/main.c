// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhcad: the host daemon, playing the PF, its VFs and the silicon behind
 * them.
 *
 *   vhcad [--run-dir DIR] [--num-vfs N] [--total-vfs N] [--foreground]
 *         [--engine P] [--engine-threads N] [--engine-rt N]
 *   vhcad [--run-dir DIR] --vm-guest [--foreground]
 *   vhcad [--run-dir DIR] --stop
 *
 * --vm-guest runs the driver half alone, inside a VM that owns a VF
 * (kernel-shim/guest/): the same sysfs view and command files, the device
 * on the other side of the VF's PCI function.
 *
 * Start-up: own the run dir (rundir.c), create the PF and N VFs (pf.c),
 * mount and serve the sysfs view (sysfs.c), then publish DIR/ready.
 * Without --foreground the daemon detaches, and the command returns only
 * once it is ready (0) or has failed (1), so scripts need not poll.
 *
 * SIGTERM, SIGINT and SIGHUP shut down cleanly: unmount, destroy the VFs
 * and the PF, remove the nodes and the run dir's files, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vhca/text.h>

#include "device/engine.h"
#include "device/limits.h"
#include "driver/context.h"
#include "driver/guests.h"
#include "driver/mgmt.h"
#include "driver/vm_attach.h"
#include "guest/guest.h"
#include "device/pf.h"
#include "driver/rundir.h"
#include "driver/sysfs.h"
#include "driver/ucma.h"

#define log_msg(fmt, ...) fprintf(stderr, "vhcad: " fmt "\n", ##__VA_ARGS__)

/* Internal wake-up of the main thread: serving ended, or failed to start. */
#define WAKE_SIGNAL SIGUSR1

enum { EXIT_USAGE = 2, PARSE_OK = -1 };

struct options {
	char *run_dir;
	unsigned int num_vfs;
	unsigned int total_vfs;
	bool num_vfs_given;
	bool total_vfs_given;
	bool foreground;
	bool stop;
	bool vm_guest;			/* --vm-guest: the driver in a VM */
	enum vhca_engine_policy engine;	/* --engine, default adaptive */
	int engine_rt_priority;		/* --engine-rt N: SCHED_FIFO, 0 never */
	unsigned int engine_threads;	/* --engine-threads N, 0: by CPUs */
	unsigned int queue_mib;		/* --queue-memory MIB, 0: fair share */
	unsigned int max_contexts;	/* --max-contexts N, 0: fair share */
};

struct daemon {
	struct vhca_rundir *rd;
	struct vhca_sysfs *fs;
	struct vhca_mgmt *mgmt;		/* DIR/mgmt.sock (mgmt.h) */
	struct vhca_guests *guests;	/* VFs bound to guests (guests.h) */
	struct vhca_vms *vms;		/* VFs attached to VMs (vm_attach.h) */
	bool pf_created;
	bool detached;
	pthread_t main_thread;
	atomic_int status_fd;	/* to the waiting parent; -1 once told */
	atomic_bool failed;	/* a serving thread could not finish start-up */
};

/* The device model; one per daemon. */
static struct vhca_pf pf;

/* ---- command line ------------------------------------------------------------ */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vhcad [--run-dir DIR] [--num-vfs N] [--total-vfs N] [--foreground]\n"
		"       vhcad [--run-dir DIR] --stop\n"
		"\n"
		"  --run-dir DIR   run directory: pid file, node list, sysfs view in DIR/sys\n"
		"                  (default " VHCA_DEFAULT_RUN_DIR ")\n"
		"  --num-vfs N     VFs to create at start, 0..total (default 0)\n"
		"  --total-vfs N   sriov_totalvfs, 0..%d (default %d)\n"
		"  --foreground    do not detach; log to stderr\n"
		"  --stop          stop the daemon that owns DIR and wait until it has exited\n"
		"  --vm-guest      inside a VM that owns a VF: serve that VF (docs/vm.md)\n"
		"  --engine P      data-path engine: adaptive (default), poll, event\n"
		"  --engine-threads N  engine threads (default: one per CPU, up to 4)\n"
		"  --queue-memory MIB  queue memory each function may map at most\n"
		"                  (default: an equal share of a quarter of the RAM)\n"
		"  --max-contexts N  contexts each function may have at most\n"
		"                  (default: an equal share of vhcad's fds, up to 4096)\n"
		"  --engine-rt N   engine SCHED_FIFO priority while within its CPU\n"
		"                  budget, 1..99, 0 never (default %d; needs root)\n"
		"  --help          this text\n",
		VHCA_MAX_VFS, VHCA_MAX_VFS, VHCA_ENGINE_RT_DEFAULT);
}

/* Strict decimal in 0..max: no sign, no blanks, no suffix. */
static bool parse_count(const char *text, unsigned int max, unsigned int *out)
{
	unsigned long value;

	if (!vhca_parse_decimal(text, strlen(text), max, &value))
		return false;
	*out = (unsigned int)value;
	return true;
}

/* The daemon chdir()s to / when it detaches: keep the run dir meaningful. */
static char *absolute_path(const char *path)
{
	char cwd[PATH_MAX];
	char *abs;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		return NULL;
	return abs;
}

static int option_error(const char *fmt, const char *what)
{
	fprintf(stderr, "vhcad: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n");
	usage(stderr);
	return EXIT_USAGE;
}

static int check_options(struct options *opt)
{
	if (opt->stop && (opt->num_vfs_given || opt->total_vfs_given ||
			  opt->foreground || opt->vm_guest))
		return option_error("%s takes no option but --run-dir",
				    "--stop");
	if (opt->vm_guest && (opt->num_vfs_given || opt->total_vfs_given))
		return option_error("%s: the VM has the VF it was given",
				    "--vm-guest");
	if (opt->num_vfs > opt->total_vfs) {
		fprintf(stderr, "vhcad: --num-vfs %u exceeds the %u total VFs\n",
			opt->num_vfs, opt->total_vfs);
		return EXIT_USAGE;
	}
	return PARSE_OK;
}

/* PARSE_OK to go on, or the exit status to leave with. */
static int parse_args(int argc, char **argv, struct options *opt)
{
	enum { OPT_RUN_DIR = 256, OPT_NUM_VFS, OPT_TOTAL_VFS, OPT_FOREGROUND,
	       OPT_STOP, OPT_ENGINE, OPT_ENGINE_RT, OPT_ENGINE_THREADS,
	       OPT_QUEUE_MEMORY, OPT_MAX_CONTEXTS, OPT_VM_GUEST };
	static const struct option long_options[] = {
		{ "run-dir", required_argument, NULL, OPT_RUN_DIR },
		{ "num-vfs", required_argument, NULL, OPT_NUM_VFS },
		{ "total-vfs", required_argument, NULL, OPT_TOTAL_VFS },
		{ "foreground", no_argument, NULL, OPT_FOREGROUND },
		{ "stop", no_argument, NULL, OPT_STOP },
		{ "engine", required_argument, NULL, OPT_ENGINE },
		{ "engine-rt", required_argument, NULL, OPT_ENGINE_RT },
		{ "engine-threads", required_argument, NULL,
		  OPT_ENGINE_THREADS },
		{ "queue-memory", required_argument, NULL, OPT_QUEUE_MEMORY },
		{ "max-contexts", required_argument, NULL, OPT_MAX_CONTEXTS },
		{ "vm-guest", no_argument, NULL, OPT_VM_GUEST },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *run_dir = VHCA_DEFAULT_RUN_DIR;
	int c;

	*opt = (struct options){ .total_vfs = VHCA_MAX_VFS,
				  .engine_rt_priority = VHCA_ENGINE_RT_DEFAULT };
	opterr = 0;	/* our messages, not getopt's */
	while ((c = getopt_long(argc, argv, "+:h", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_RUN_DIR:
			if (!*optarg)
				return option_error("%s needs a directory",
						    "--run-dir");
			run_dir = optarg;
			break;
		case OPT_NUM_VFS:
			if (!parse_count(optarg, VHCA_MAX_VFS, &opt->num_vfs))
				return option_error("bad --num-vfs '%s'",
						    optarg);
			opt->num_vfs_given = true;
			break;
		case OPT_TOTAL_VFS:
			if (!parse_count(optarg, VHCA_MAX_VFS, &opt->total_vfs))
				return option_error("bad --total-vfs '%s'",
						    optarg);
			opt->total_vfs_given = true;
			break;
		case OPT_FOREGROUND:
			opt->foreground = true;
			break;
		case OPT_STOP:
			opt->stop = true;
			break;
		case OPT_VM_GUEST:
			opt->vm_guest = true;
			break;
		case OPT_ENGINE:
			if (vhca_engine_parse_policy(optarg, &opt->engine))
				return option_error("bad --engine '%s'",
						    optarg);
			break;
		case OPT_ENGINE_RT: {
			unsigned int prio;

			if (!parse_count(optarg, 99, &prio))
				return option_error("bad --engine-rt '%s'",
						    optarg);
			opt->engine_rt_priority = (int)prio;
			break;
		}
		case OPT_ENGINE_THREADS:
			if (!parse_count(optarg, VHCA_ENGINE_MAX_THREADS,
					 &opt->engine_threads) ||
			    !opt->engine_threads)
				return option_error("bad --engine-threads '%s'",
						    optarg);
			break;
		case OPT_QUEUE_MEMORY:
			if (!parse_count(optarg, 1u << 30, &opt->queue_mib) ||
			    !opt->queue_mib)
				return option_error("bad --queue-memory '%s'",
						    optarg);
			break;
		case OPT_MAX_CONTEXTS:
			if (!parse_count(optarg, 1u << 20, &opt->max_contexts) ||
			    !opt->max_contexts)
				return option_error("bad --max-contexts '%s'",
						    optarg);
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case ':':
			return option_error("%s needs an argument",
					    argv[optind - 1]);
		default:
			return option_error("unknown option '%s'",
					    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return option_error("unexpected argument '%s'", argv[optind]);

	opt->run_dir = absolute_path(run_dir);
	if (!opt->run_dir) {
		log_msg("run dir %s: %s", run_dir, strerror(errno));
		return EXIT_FAILURE;
	}
	return check_options(opt);
}

/* ---- detaching -------------------------------------------------------------------- */

/* In the parent: the daemon's verdict on its start-up is our exit status. */
static int wait_for_daemon(int fd)
{
	unsigned char status;
	ssize_t n;

	do
		n = read(fd, &status, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		return status;
	log_msg("the daemon exited during start-up");
	return EXIT_FAILURE;
}

static void redirect(int target_fd, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);

	if (fd < 0) {
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return;
	}
	if (fd != target_fd) {
		dup2(fd, target_fd);
		close(fd);
	}
}

/*
 * Forks before anything else exists (no threads, no lock: fcntl locks are
 * per process).  The parent waits for the start-up verdict; the child keeps
 * stderr for start-up errors and moves it to DIR/vhcad.log once ready, so
 * that whoever started it sees its errors but never waits on its logs.
 */
static int detach(struct daemon *d)
{
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC)) {
		log_msg("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_msg("fork: %s", strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid > 0) {
		close(pipefd[1]);
		_exit(wait_for_daemon(pipefd[0]));
	}
	close(pipefd[0]);
	atomic_store(&d->status_fd, pipefd[1]);
	d->detached = true;
	setsid();
	if (chdir("/"))
		log_msg("chdir /: %s", strerror(errno));
	redirect(STDIN_FILENO, "/dev/null", O_RDONLY);
	redirect(STDOUT_FILENO, "/dev/null", O_WRONLY);
	return 0;
}

static void report_startup(struct daemon *d, unsigned char status)
{
	int fd = atomic_exchange(&d->status_fd, -1);

	if (fd < 0)
		return;
	if (write(fd, &status, 1) != 1) {
		/* The parent is gone; nobody is waiting for the verdict. */
	}
	close(fd);
}

/* ---- events from the serving threads ------------------------------------------------- */

static void on_ready(void *arg)
{
	struct daemon *d = arg;
	unsigned int num_vfs;
	char log_path[PATH_MAX];

	if (vhca_rundir_mark_ready(d->rd)) {
		atomic_store(&d->failed, true);
		pthread_kill(d->main_thread, WAKE_SIGNAL);
		return;
	}
	if (d->detached) {
		snprintf(log_path, sizeof(log_path), "%s/" VHCA_LOG_FILE_NAME,
			 vhca_rundir_path(d->rd));
		redirect(STDERR_FILENO, log_path,
			 O_WRONLY | O_CREAT | O_APPEND);
	}
	pthread_rwlock_rdlock(&pf.lock);
	num_vfs = pf.num_vfs;
	pthread_rwlock_unlock(&pf.lock);
	log_msg("ready (pid %d): %s and %u VF(s), sysfs view at %s",
		(int)getpid(), pf.dev.name, num_vfs,
		vhca_rundir_sys_path(d->rd));
	report_startup(d, EXIT_SUCCESS);
}

/* Provisioning changes (pf.c), under pf.lock: logged for now. */
static void on_dev_changed(void *arg, struct vhca_dev *dev,
			   enum vhca_change what)
{
	static const char *const names[] = {
		[VHCA_CHANGE_GID] = "GID_CHANGE",
		[VHCA_CHANGE_PKEY] = "PKEY_CHANGE",
		[VHCA_CHANGE_PORT_ACTIVE] = "PORT_ACTIVE",
		[VHCA_CHANGE_PORT_ERR] = "PORT_ERR",
		[VHCA_CHANGE_ADDR] = "ADDR_CHANGE",
	};

	log_msg("%s: %s", dev->name, names[what]);
	vhca_cm_dev_changed(dev, what);
}

/* A function goes away: the CM's ids on it hear DEVICE_REMOVAL. */
static void on_dev_removed(void *arg, struct vhca_dev *dev)
{
	vhca_cm_dev_removed(dev);
}

static void on_stopped(void *arg)
{
	struct daemon *d = arg;

	pthread_kill(d->main_thread, WAKE_SIGNAL);
}

/* ---- start-up and shutdown --------------------------------------------------------- */

static int start_up(struct daemon *d, const struct options *opt)
{
	struct vhca_sysfs_events events = {
		.ready = on_ready, .stopped = on_stopped, .arg = d,
	};
	struct vhca_pf_hooks hooks = {
		.claim_uverbs = vhca_rundir_claim_uverbs,
		.release_uverbs = vhca_rundir_release_uverbs,
		.dev_changed = on_dev_changed,
		.dev_removed = on_dev_removed,
		/* vhcad's own driver runs its functions' commands in-process */
		.sink = &vhca_ucontext_sink,
	};
	int ret;

	log_msg("starting (pid %d) on %s", (int)getpid(), opt->run_dir);
	ret = vhca_rundir_open(opt->run_dir, &d->rd);
	if (ret)
		return ret;

	hooks.arg = d->rd;
	/* What the daemon has to share among functions (limits.h). */
	vhca_budget_init();
	if (opt->queue_mib)
		vhca_budget_cap_queue_bytes((uint64_t)opt->queue_mib << 20);
	if (opt->max_contexts)
		vhca_budget_cap_contexts(opt->max_contexts);
	d->guests = vhca_guests_create();
	if (!d->guests) {
		log_msg("cannot set up guest bindings: %s", strerror(errno));
		return -ENOMEM;
	}
	if (opt->vm_guest) {
		/* The device is the VF's, across its PCI function. */
		hooks.sink = NULL;
		ret = vhca_guest_start(&pf, &hooks);
		if (ret)
			return ret;
		d->pf_created = true;
		ret = vhca_cm_start(&pf, d->guests);
		if (ret)
			return ret;
		ret = vhca_sysfs_mount(&d->fs, &pf, d->guests,
				       vhca_rundir_sys_path(d->rd), &events);
		return ret ? ret : vhca_sysfs_start(d->fs);
	}
	ret = vhca_pf_init(&pf, vhca_default_guid_base(), &hooks);
	if (ret) {
		log_msg("cannot create the PF: %s", strerror(-ret));
		return ret;
	}
	d->pf_created = true;
	pthread_rwlock_wrlock(&pf.lock);
	pf.total_vfs = opt->total_vfs;
	pthread_rwlock_unlock(&pf.lock);

	ret = vhca_pf_set_num_vfs(&pf, opt->num_vfs);
	if (ret) {
		log_msg("cannot create %u VFs: %s", opt->num_vfs,
			strerror(-ret));
		return ret;
	}
	ret = vhca_cm_start(&pf, d->guests);
	if (ret)
		return ret;
	ret = vhca_sysfs_mount(&d->fs, &pf, d->guests,
			       vhca_rundir_sys_path(d->rd),
			       &events);
	if (ret)
		return ret;
	/* The engine runs before any guest can open a command file. */
	ret = vhca_engine_start(&(struct vhca_engine_config){
		.policy = opt->engine,
		.threads = opt->engine_threads,
		.rt_priority = opt->engine_rt_priority,
	});
	if (ret)
		return ret;
	ret = vhca_sysfs_start(d->fs);
	if (!ret)
		ret = vhca_vms_create(&d->vms, &pf, d->guests,
				      vhca_rundir_path(d->rd));
	if (ret)
		return ret;
	return vhca_mgmt_start(&d->mgmt, &pf, d->guests, d->vms,
			       vhca_rundir_path(d->rd));
}

/* Undoes whatever start_up() got done, in reverse. */
static void shut_down(struct daemon *d)
{
	/* Withdraw "ready" first: nobody should start using us now. */
	if (d->rd)
		vhca_rundir_clear_ready(d->rd);
	vhca_mgmt_stop(d->mgmt);
	/* VMs first: their BARs say the device is gone, their contexts go. */
	vhca_vms_destroy(d->vms);
	if (d->fs)
		vhca_sysfs_unmount(d->fs);
	vhca_cm_stop();
	vhca_engine_stop();
	if (d->pf_created && pf.pf_hidden)
		vhca_guest_stop(&pf);
	else if (d->pf_created)
		vhca_pf_fini(&pf);
	vhca_guests_destroy(d->guests);
	if (d->rd)
		vhca_rundir_close(d->rd);
}

/*
 * Blocked in every thread (threads inherit the mask), taken synchronously
 * by the main thread only.
 */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, WAKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

static int wait_for_signal(const sigset_t *set)
{
	for (;;) {
		int sig = sigwaitinfo(set, NULL);

		if (sig > 0 || errno != EINTR)
			return sig;
	}
}

/* Serves until told to stop; returns the exit status. */
static int serve_until_stopped(struct daemon *d, const sigset_t *set)
{
	int sig = wait_for_signal(set);

	if (sig == WAKE_SIGNAL) {
		if (atomic_load(&d->failed))
			return EXIT_FAILURE;
		log_msg("the sysfs view was unmounted from outside; shutting down");
		return EXIT_FAILURE;
	}
	if (sig < 0) {
		log_msg("waiting for signals: %s", strerror(errno));
		return EXIT_FAILURE;
	}
	log_msg("SIG%s: shutting down", sigabbrev_np(sig));
	return EXIT_SUCCESS;
}

static int run_daemon(const struct options *opt)
{
	struct daemon d = { .rd = NULL };
	int status = EXIT_FAILURE;
	sigset_t set;

	atomic_init(&d.status_fd, -1);
	atomic_init(&d.failed, false);
	/* A guest may close an event fd any time: EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	if (!opt->foreground && detach(&d))
		return EXIT_FAILURE;
	d.main_thread = pthread_self();
	block_signals(&set);

	if (!start_up(&d, opt))
		status = serve_until_stopped(&d, &set);
	shut_down(&d);
	report_startup(&d, EXIT_FAILURE);	/* if never ready */
	if (!status)
		log_msg("stopped");
	return status;
}

int main(int argc, char **argv)
{
	struct options opt;
	int ret;

	ret = parse_args(argc, argv, &opt);
	if (ret == PARSE_OK && opt.stop)
		ret = vhca_rundir_stop_daemon(opt.run_dir) ? EXIT_FAILURE :
							      EXIT_SUCCESS;
	else if (ret == PARSE_OK)
		ret = run_daemon(&opt);
	free(opt.run_dir);
	return ret;
}

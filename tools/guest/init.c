// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The guest's first process, PID 1 of its namespace (guest.h).
 *
 * It dies with vhca-guest (PR_SET_PDEATHSIG), so a guest whose launcher
 * kills vhca-guest, even with SIGKILL, is gone with every process in it:
 * the kernel kills a PID namespace whose init exits.  It is what tini is
 * to a container: it passes the signals vhca-guest receives on to CMD
 * (signals without a handler never reach a namespace's init), reaps
 * orphans, and ends with CMD.  CMD does not run as PID 1 itself because
 * PID 1 ignores its own default-action signals (raise(SIGTERM) would do
 * nothing).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cm_supervise.h"
#include "guest.h"

/*
 * What the kernel's own /proc/sys and hardware knobs must not take from a
 * guest: uid 0 without capabilities may still write root-owned files,
 * and these are root-owned (docker masks the same).
 */
static const char *const proc_read_only[] = {
	"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus",
	"/proc/fs",
};

static void mount_proc(void)
{
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };

	/* The guest's own PID namespace: its processes and nobody else's. */
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL))
		guest_fail("cannot mount the guest's /proc: %s",
			   strerror(errno));
	for (size_t i = 0;
	     i < sizeof(proc_read_only) / sizeof(proc_read_only[0]); i++) {
		const char *path = proc_read_only[i];

		if (access(path, F_OK))
			continue;
		if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) ||
		    mount_setattr(AT_FDCWD, path, AT_RECURSIVE, &ro,
				  sizeof(ro)))
			guest_fail("cannot make %s read-only: %s", path,
				   strerror(errno));
	}
}

static int capset_raw(struct __user_cap_header_struct *hdr,
		      struct __user_cap_data_struct *data)
{
	return (int)syscall(SYS_capset, hdr, data);
}

/*
 * No capability, now or after any exec: the bounding and ambient sets
 * emptied, uid 0 granted nothing by exec (SECBIT_NOROOT), setuid-root
 * programs powerless (no_new_privs), all of it locked.  With --user, the
 * user's uid, gid and groups as well.
 */
static void drop_privileges(const struct guest *g)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (prctl(PR_SET_SECUREBITS,
		  SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
			  SECBIT_NO_SETUID_FIXUP |
			  SECBIT_NO_SETUID_FIXUP_LOCKED |
			  SECBIT_KEEP_CAPS_LOCKED |
			  SECBIT_NO_CAP_AMBIENT_RAISE |
			  SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
		  0, 0, 0))
		guest_fail("cannot lock the guest's securebits: %s",
			   strerror(errno));
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
			guest_fail("cannot drop capability %d: %s", cap,
				   strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0))
		guest_fail("cannot clear ambient capabilities: %s",
			   strerror(errno));
	if (g->as_user) {
		if (initgroups(g->user_name, g->gid) || setgid(g->gid) ||
		    setuid(g->uid))
			guest_fail("cannot become user %s: %s", g->user_name,
				   strerror(errno));
	} else if (setgroups(0, NULL)) {
		guest_fail("cannot drop supplementary groups: %s",
			   strerror(errno));
	}
	/* SECBIT_NO_SETUID_FIXUP kept them across setuid(): now none. */
	if (capset_raw(&hdr, none))
		guest_fail("cannot drop capabilities: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		guest_fail("cannot set no_new_privs: %s", strerror(errno));
}

static void set_guest_environment(const struct guest *g)
{
	char value[32];

	if (setenv("SYSFS_PATH", g->sys_path, 1))
		guest_fail("cannot set SYSFS_PATH: %s", strerror(errno));
	snprintf(value, sizeof(value), GUEST_VF_PREFIX "%u", g->vf);
	setenv("VHCA_GUEST_DEVICE", value, 1);
	setenv("VHCA_GUEST_NAME", g->name, 1);
	/* For CMDs that close inherited fds and want to keep the VF. */
	snprintf(value, sizeof(value), "%d", g->lock_fd);
	setenv("VHCA_GUEST_LOCK_FD", value, 1);
	if (g->as_user) {
		setenv("USER", g->user_name, 1);
		setenv("LOGNAME", g->user_name, 1);
	}
}

/*
 * CMD, in a child: its errno goes to @exec_fd (close-on-exec) if it fails.
 * It runs under the rdma_cm filter, whose listener goes out on @sup_fd.
 */
static _Noreturn void exec_cmd(const struct guest *g, int exec_fd,
			       int sup_fd)
{
	sigset_t none;
	int err;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Without the filter CMD runs all the same, only without rdma_cm. */
	err = cm_sup_install(sup_fd);
	if (err)
		fprintf(stderr, "vhca-guest: no rdma_cm for %s: %s\n",
			g->cmd[0], strerror(-err));
	close(sup_fd);
	execvp(g->cmd[0], g->cmd);
	err = errno;
	if (write(exec_fd, &err, sizeof(err)) != sizeof(err)) {
		/* The init learns of it from our exit status. */
	}
	_exit(GUEST_EXIT_CANNOT_EXECUTE);
}

/*
 * The rdma_cm supervisor (cm_supervise.h), a child of ours beside CMD:
 * it serves until no process of the guest is under the filter, and the
 * guest ends with us, so it outlives everything it serves.
 */
static void start_supervisor(const struct guest *g, int sup_fd)
{
	char path[PATH_MAX];
	int listener;
	pid_t pid;

	listener = cm_sup_receive(sup_fd);
	close(sup_fd);
	if (listener < 0)
		return;		/* CMD failed before exec: it says why */
	snprintf(path, sizeof(path), "%s/" GUEST_RDMA_CM_DIR "/vhca_cmd",
		 g->sys_path);
	pid = fork();
	if (pid < 0)
		guest_fail("cannot start the rdma_cm supervisor: %s",
			   strerror(errno));
	if (pid == 0) {
		int ret = cm_sup_serve(listener, path, g->node_rdev);

		if (ret)
			fprintf(stderr, "vhca-guest: rdma_cm supervisor: %s\n",
				strerror(-ret));
		_exit(ret ? GUEST_EXIT_FAILED : 0);
	}
	close(listener);
}

static pid_t start_cmd(const struct guest *g)
{
	int exec_pipe[2], sup[2], err;
	ssize_t n;
	pid_t cmd;

	if (pipe2(exec_pipe, O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sup))
		guest_fail("pipe: %s", strerror(errno));
	cmd = fork();
	if (cmd < 0)
		guest_fail("cannot start %s: %s", g->cmd[0], strerror(errno));
	if (cmd == 0) {
		close(exec_pipe[0]);
		close(sup[0]);
		exec_cmd(g, exec_pipe[1], sup[1]);
	}
	close(exec_pipe[1]);
	close(sup[1]);
	start_supervisor(g, sup[0]);
	n = read(exec_pipe[0], &err, sizeof(err));
	close(exec_pipe[0]);
	if (n == sizeof(err)) {
		fprintf(stderr, "vhca-guest: cannot run %s: %s\n", g->cmd[0],
			strerror(err));
		exit(err == ENOENT ? GUEST_EXIT_NOT_FOUND :
				     GUEST_EXIT_CANNOT_EXECUTE);
	}
	return cmd;
}

_Noreturn void guest_run_init(const struct guest *g, int go_fd,
			      int status_fd)
{
	sigset_t set;
	pid_t cmd;
	char go;

	/* vhca-guest's signal mask (the signals it forwards) is ours too. */
	sigprocmask(SIG_BLOCK, NULL, &set);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0))
		_exit(GUEST_EXIT_FAILED);
	/*
	 * EOF: vhcad did not bind the VF to us, or vhca-guest died (also
	 * before the parent-death signal was armed), and we must not run.
	 */
	if (read(go_fd, &go, 1) != 1)
		_exit(GUEST_EXIT_FAILED);
	close(go_fd);

	mount_proc();
	drop_privileges(g);
	set_guest_environment(g);
	cmd = start_cmd(g);

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&set, &info), status;
		pid_t pid;

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(cmd, sig);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != cmd)
				continue;	/* an orphan, reaped */
			if (write(status_fd, &status, sizeof(status)) !=
			    sizeof(status))
				_exit(GUEST_EXIT_FAILED);
			/* Our exit ends whatever CMD left in the guest. */
			_exit(0);
		}
	}
}

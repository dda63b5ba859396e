/* System V IPC: a semaphore set (key 0x5eedPPPP, mode 0640, values 2,0,7,0) with one
 * thread blocked in semop on semaphore 1 and one in semtimedop (60 s) on semaphore 3;
 * a message queue (key 0x5eefPPPP, mode 0600, qbytes 8000) holding "one" (type 1),
 * "two" (type 2), "three" (type 1); and a private queue a thread waits in msgrcv on.
 * With argument "undo" it also takes semaphore 0 with SEM_UNDO (a dump must refuse it).
 * On SIGUSR1 it checks everything, printing "PASS name" or "FAIL name: why" per check,
 * then "DONE", and removes its objects. */
#include "victim.h"
#include <pthread.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>

union semun { int val; struct semid_ds *buf; unsigned short *array; };
struct msg { long type; char text[32]; };

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static int semid, msqid, msq2, semkey, msgkey;
static volatile int semop_r = 1, semop_err, timed_r = 1, timed_err, msgrcv_r = -2, msgrcv_err;

static void *waiter(void *a) {
  (void)a;
  struct sembuf sb = {1, -1, 0};
  int r = semop(semid, &sb, 1);
  semop_err = errno;
  semop_r = r;
  return NULL;
}

static void *timed_waiter(void *a) {
  (void)a;
  struct sembuf sb = {3, -1, 0};
  struct timespec ts = {60, 0};
  int r = semtimedop(semid, &sb, 1, &ts);
  timed_err = errno;
  timed_r = r;
  return NULL;
}

static void *receiver(void *a) {
  (void)a;
  struct msg m;
  int r = msgrcv(msq2, &m, sizeof m.text, 0, 0);
  msgrcv_err = errno;
  msgrcv_r = r;
  return NULL;
}

static void wait_for(volatile int *v, int from) {
  for (int i = 0; i < 2000 && *v == from; i++) usleep(1000);
}

static void check(void) {
  unsigned short vals[4] = {9, 9, 9, 9};
  semctl(semid, 0, GETALL, (union semun){.array = vals});
  verdict("sem-values", vals[0] == 2 && vals[1] == 0 && vals[2] == 7 && vals[3] == 0, "values %u,%u,%u,%u", vals[0], vals[1], vals[2], vals[3]);
  struct semid_ds sd;
  int r = semctl(semid, 0, IPC_STAT, (union semun){.buf = &sd});
  verdict("sem-perm", r == 0 && (sd.sem_perm.mode & 0777) == 0640 && sd.sem_perm.__key == semkey && semget(semkey, 0, 0) == semid,
         "IPC_STAT %d mode 0%o key 0x%x", r, sd.sem_perm.mode & 0777, sd.sem_perm.__key);
  struct sembuf post = {1, 1, 0};
  semop(semid, &post, 1);
  wait_for(&semop_r, 1);
  verdict("sem-blocked-semop", semop_r == 0, "semop returned %d (%s)", semop_r, strerror(semop_err));
  post.sem_num = 3;
  semop(semid, &post, 1);
  wait_for(&timed_r, 1);
  verdict("sem-blocked-semtimedop", timed_r == 0, "semtimedop returned %d (%s)", timed_r, strerror(timed_err));
  const char *want[] = {"one", "two", "three"};
  long wantt[] = {1, 2, 1};
  int ok = 1;
  char why[128] = "";
  for (int i = 0; i < 3; i++) {
    struct msg m = {0};
    ssize_t n = msgrcv(msqid, &m, sizeof m.text, 0, IPC_NOWAIT);
    if (n != (ssize_t)strlen(want[i]) || m.type != wantt[i] || memcmp(m.text, want[i], n) != 0) {
      ok = 0;
      snprintf(why, sizeof why, "message %d: %zd bytes type %ld (%s)", i, n, m.type, n < 0 ? strerror(errno) : m.text);
      break;
    }
  }
  struct msg m;
  ssize_t n = msgrcv(msqid, &m, sizeof m.text, 0, IPC_NOWAIT);
  verdict("msg-messages", ok && n < 0 && errno == ENOMSG, "%s (then %zd)", why, n);
  struct msqid_ds qd;
  r = msgctl(msqid, IPC_STAT, &qd);
  verdict("msg-perm", r == 0 && qd.msg_qbytes == 8000 && (qd.msg_perm.mode & 0777) == 0600 && msgget(msgkey, 0) == msqid,
         "IPC_STAT %d qbytes %lu mode 0%o", r, (unsigned long)qd.msg_qbytes, qd.msg_perm.mode & 0777);
  struct msg w = {5, "wake"};
  msgsnd(msq2, &w, 4, 0);
  wait_for(&msgrcv_r, -2);
  verdict("msg-blocked-msgrcv", msgrcv_r == 4, "msgrcv returned %d (%s)", msgrcv_r, strerror(msgrcv_err));
  semctl(semid, 0, IPC_RMID);
  msgctl(msqid, IPC_RMID, NULL);
  msgctl(msq2, IPC_RMID, NULL);
}

int main(int argc, char **argv) {
  semkey = 0x5eed0000 | (getpid() & 0xffff);
  msgkey = 0x5eef0000 | (getpid() & 0xffff);
  semid = semget(semkey, 4, IPC_CREAT | IPC_EXCL | 0640);
  msqid = msgget(msgkey, IPC_CREAT | IPC_EXCL | 0600);
  msq2 = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  if (semid < 0 || msqid < 0 || msq2 < 0) { say("get: %s\n", strerror(errno)); return 1; }
  unsigned short vals[4] = {2, 0, 7, 0};
  semctl(semid, 0, SETALL, (union semun){.array = vals});
  struct msqid_ds qd;
  msgctl(msqid, IPC_STAT, &qd);
  qd.msg_qbytes = 8000;
  msgctl(msqid, IPC_SET, &qd);
  struct msg m1 = {1, "one"}, m2 = {2, "two"}, m3 = {1, "three"};
  msgsnd(msqid, &m1, 3, 0);
  msgsnd(msqid, &m2, 3, 0);
  msgsnd(msqid, &m3, 5, 0);
  if (argc > 1 && strcmp(argv[1], "undo") == 0) {
    struct sembuf take = {0, -1, SEM_UNDO};
    semop(semid, &take, 1);
    /* Give it back without undo: the values are as saved, but the undo list stays. */
    struct sembuf give = {0, 1, 0};
    semop(semid, &give, 1);
  }
  signal(SIGUSR1, on_usr1);
  /* The waiting threads take no signals: SIGUSR1 must wake main's pause(). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_t t1, t2, t3;
  pthread_create(&t1, NULL, waiter, NULL);
  pthread_create(&t2, NULL, timed_waiter, NULL);
  pthread_create(&t3, NULL, receiver, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  usleep(50000);
  say("READY pid=%d sem=%d msg=%d msg2=%d\n", getpid(), semid, msqid, msq2);
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
  check();
  say("DONE\n");
  for (;;) pause();
}

/* The hello app in C on libfcgi (fcgi_stdio), the FastCGI limit: spawn-fcgi binds the socket and
 * forks this program; each process answers requests one at a time.
 * Build: cc -O2 -o hello-fcgi hello-fcgi.c -lfcgi */
#include <fcgi_stdio.h>
#include <unistd.h>

int main(void) {
    unsigned long count = 0;
    while (FCGI_Accept() >= 0) {
        count++;
        printf("Content-Type: text/plain\r\n\r\n"
               "Hello World!\nAccess count: %lu\nPID: %ld\n",
               count, (long)getpid());
    }
    return 0;
}

/* The hello app as a C CGI program, the CGI limit: one fork+exec per request, so the access count
 * is always 1. Build: cc -O2 -o hello-cgi hello-cgi.c */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("Content-Type: text/plain\r\n\r\n"
           "Hello World!\nAccess count: 1\nPID: %ld\n",
           (long)getpid());
    return 0;
}

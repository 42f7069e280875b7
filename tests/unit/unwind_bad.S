/*
 * unwind_bad.S — two functions whose unwind information leads to a word
 * that is not a return address, as hand-written assembly gets wrong: each
 * calls cb(arg), and unwinding it by its CFI finds the address of
 * bad_data_word (data, not code) where the return address should be.
 *   bad_ra_call: its CFI places the return address on a word it pushed.
 *   bad_rbp_call: its CFA is rbp + 16, and it then changes rbp with no CFI
 *     to say so.
 * An unwinder must not keep that word as a frame.
 */
    .text
    .globl bad_ra_call
    .type bad_ra_call, @function
bad_ra_call:
    .cfi_startproc
    lea bad_data_word(%rip), %rax
    push %rax
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rip, -16
    mov %rdi, %rax
    mov %rsi, %rdi
    call *%rax
    pop %rax
    .cfi_adjust_cfa_offset -8
    .cfi_offset %rip, -8
    ret
    .cfi_endproc
    .size bad_ra_call, . - bad_ra_call

    .globl bad_rbp_call
    .type bad_rbp_call, @function
bad_rbp_call:
    .cfi_startproc
    push %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    mov %rsp, %rbp
    .cfi_def_cfa_register %rbp
    sub $32, %rsp
    lea bad_data_word(%rip), %rax
    mov %rax, 8(%rsp)
    mov %rsp, %rbp          /* no CFI says so: rbp + 16 is no longer the CFA */
    mov %rdi, %rax
    mov %rsi, %rdi
    call *%rax
    add $32, %rsp
    pop %rbp
    .cfi_def_cfa %rsp, 8
    ret
    .cfi_endproc
    .size bad_rbp_call, . - bad_rbp_call

    .data
    .globl bad_data_word
    .align 8
bad_data_word:
    .quad 0

    .section .note.GNU-stack, "", @progbits

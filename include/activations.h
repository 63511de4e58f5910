/* activations: ReLU, Sigmoid, Tanh and Softmax as graph ops, and as parameterless
 * modules. Softmax works over the last (feature) axis, max-subtracted; Sigmoid does
 * not overflow at large |x|. Names carry the act_ prefix (tanh is libm's). */
#ifndef MINIDL_ACTIVATIONS_H
#define MINIDL_ACTIVATIONS_H

#include "nn_layers.h"

struct Node *act_relu(struct Node *x);
struct Node *act_sigmoid(struct Node *x);
struct Node *act_tanh(struct Node *x);
struct Node *act_softmax(struct Node *x);     /* rows of a (B x C) tensor */

/* kind: MOD_RELU, MOD_SIGMOID, MOD_TANH or MOD_SOFTMAX. */
struct Module *act_module_create(uint32_t kind);

#endif

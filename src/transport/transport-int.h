/* transport internals shared between its files. */
#ifndef CLAMPD_TRANSPORT_INT_H
#define CLAMPD_TRANSPORT_INT_H

#include "transport/transport.h"

#endif

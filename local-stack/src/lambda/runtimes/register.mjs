// Loaded with `node --import` before aws-lambda-ric: registers the SDK resolve hook.
import { register } from 'node:module';

register(new URL('./sdk-resolve.mjs', import.meta.url));
